#include "fetch/addr_policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/array.h"

typedef struct {
    int family; /* AF_INET / AF_INET6, or 0 for a host name */
    uint8_t addr[16];
    int prefix;
    char host[256];
} allow_entry;

struct addr_policy {
    allow_entry *entries;
    size_t n;
};

static bool prefix_match(const uint8_t *a, const uint8_t *net, int bits)
{
    int full = bits / 8, rest = bits % 8;
    if (memcmp(a, net, (size_t)full)) return false;
    if (!rest) return true;
    uint8_t mask = (uint8_t)(0xFF << (8 - rest));
    return (a[full] & mask) == (net[full] & mask);
}

static bool v4_public(const uint8_t *a)
{
    static const struct {
        uint8_t net[4];
        int bits;
    } blocked[] = {
        {{0, 0, 0, 0}, 8},       /* "this network" */
        {{10, 0, 0, 0}, 8},      /* private */
        {{100, 64, 0, 0}, 10},   /* carrier-grade NAT */
        {{127, 0, 0, 0}, 8},     /* loopback */
        {{169, 254, 0, 0}, 16},  /* link-local, cloud metadata */
        {{172, 16, 0, 0}, 12},   /* private */
        {{192, 0, 0, 0}, 24},    /* IETF protocol assignments */
        {{192, 0, 2, 0}, 24},    /* documentation */
        {{192, 88, 99, 0}, 24},  /* 6to4 relay anycast */
        {{192, 168, 0, 0}, 16},  /* private */
        {{198, 18, 0, 0}, 15},   /* benchmarking */
        {{198, 51, 100, 0}, 24}, /* documentation */
        {{203, 0, 113, 0}, 24},  /* documentation */
        {{224, 0, 0, 0}, 4},     /* multicast */
        {{240, 0, 0, 0}, 4},     /* reserved, broadcast */
    };
    for (size_t i = 0; i < sizeof blocked / sizeof blocked[0]; i++)
        if (prefix_match(a, blocked[i].net, blocked[i].bits)) return false;
    return true;
}

static bool v6_public(const uint8_t *a)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    static const uint8_t compat[12] = {0};
    static const uint8_t nat64[12] = {0, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0};
    /* Forms that carry an IPv4 address are judged by that address. */
    if (!memcmp(a, mapped, 12) || !memcmp(a, nat64, 12)) return v4_public(a + 12);
    if (!memcmp(a, compat, 12)) return false; /* ::, ::1 and deprecated IPv4-compatible */
    static const struct {
        uint8_t net[16];
        int bits;
    } blocked[] = {
        {{0x01, 0x00}, 64},             /* discard-only 100::/64 */
        {{0x20, 0x01, 0x0d, 0xb8}, 32}, /* documentation */
        {{0x20, 0x01, 0x00, 0x00}, 23}, /* IETF protocol assignments (Teredo, ...) */
        {{0x20, 0x02}, 16},             /* 6to4: embeds IPv4, refuse rather than decode */
        {{0xfc}, 7},                    /* unique local */
        {{0xfe, 0x80}, 10},             /* link-local */
        {{0xfe, 0xc0}, 10},             /* site-local (deprecated) */
        {{0xff}, 8},                    /* multicast */
    };
    for (size_t i = 0; i < sizeof blocked / sizeof blocked[0]; i++)
        if (prefix_match(a, blocked[i].net, blocked[i].bits)) return false;
    return true;
}

bool addr_is_public(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) return v4_public((const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr);
    if (sa->sa_family == AF_INET6) return v6_public(((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr);
    return false; /* unix sockets and anything else */
}

static int parse_entry(const char *s, allow_entry *e)
{
    memset(e, 0, sizeof *e);
    char buf[300];
    /* Refuse rather than truncate: a cut "/0000...8" would read as /0. */
    if (strlen(s) >= sizeof buf) return -1;
    snprintf(buf, sizeof buf, "%s", s);
    char *slash = strchr(buf, '/');
    if (slash) *slash = 0;
    if (inet_pton(AF_INET, buf, e->addr) == 1) e->family = AF_INET, e->prefix = 32;
    else if (inet_pton(AF_INET6, buf, e->addr) == 1) e->family = AF_INET6, e->prefix = 128;
    else {
        size_t n = strlen(buf);
        if (slash || !n || n >= sizeof e->host) return -1;
        memcpy(e->host, buf, n + 1); /* not snprintf: gcc -O0 cannot see the length check */
        return 0;
    }
    if (slash) {
        char *end;
        long bits = strtol(slash + 1, &end, 10);
        if (*end || bits < 0 || bits > e->prefix) return -1;
        e->prefix = (int)bits;
    }
    return 0;
}

addr_policy *addr_policy_new(const char *allow, char *err, size_t err_len)
{
    addr_policy *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    if (!allow || !*allow) return p;
    char *copy = strdup(allow), *save = NULL;
    if (!copy) {
        free(p);
        return NULL;
    }
    for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        allow_entry *ne = array_resize(p->entries, p->n + 1, sizeof *ne);
        if (!ne) goto fail;
        p->entries = ne;
        if (parse_entry(tok, &p->entries[p->n])) {
            snprintf(err, err_len, "bad allowlist entry '%.100s' (want a CIDR like 10.0.0.0/8 or a host name)", tok);
            goto fail;
        }
        p->n++;
    }
    free(copy);
    return p;
fail:
    free(copy);
    addr_policy_free(p);
    return NULL;
}

void addr_policy_free(addr_policy *p)
{
    if (!p) return;
    free(p->entries);
    free(p);
}

bool addr_policy_permits(const addr_policy *p, const struct sockaddr *sa, const char *host)
{
    for (size_t i = 0; p && i < p->n; i++) {
        const allow_entry *e = &p->entries[i];
        if (!e->family) {
            if (host && !strcasecmp(host, e->host)) return true;
        } else if (e->family == AF_INET && sa->sa_family == AF_INET) {
            if (prefix_match((const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr, e->addr, e->prefix)) return true;
        } else if (e->family == AF_INET6 && sa->sa_family == AF_INET6) {
            if (prefix_match(((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr, e->addr, e->prefix)) return true;
        }
    }
    return addr_is_public(sa);
}
