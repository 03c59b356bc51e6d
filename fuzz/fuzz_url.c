/* fetch_filename_from_url on the text, and the text as a URL allowlist. */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "fetch/addr_policy.h"
#include "fetch/fetcher.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size);
    char *name = fetch_filename_from_url(s);
    if (!name) abort();
    free(name);

    char err[256];
    addr_policy *p = addr_policy_new(s, err, sizeof err);
    if (!p && !memchr(err, 0, sizeof err)) abort();

    /* The first bytes as an IPv4 and an IPv6 address. */
    struct sockaddr_in v4 = {.sin_family = AF_INET};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
    memcpy(&v4.sin_addr, data, size < 4 ? size : 4);
    memcpy(&v6.sin6_addr, data, size < 16 ? size : 16);
    const char *host = size > 16 ? s + 16 : "example.com";
    addr_is_public((struct sockaddr *)&v4);
    addr_is_public((struct sockaddr *)&v6);
    if (p) {
        addr_policy_permits(p, (struct sockaddr *)&v4, host);
        addr_policy_permits(p, (struct sockaddr *)&v6, host);
        addr_policy_permits(p, (struct sockaddr *)&v6, NULL);
        addr_policy_free(p);
    }
    free(s);
    return 0;
}
