/* Which addresses a fetched URL may reach. */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "check.h"
#include "fetch/addr_policy.h"

static struct sockaddr_storage addr(const char *text)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, text, &v4->sin_addr) == 1) v4->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, text, &v6->sin6_addr) == 1) v6->sin6_family = AF_INET6;
    return ss;
}

static int public_(const char *t)
{
    struct sockaddr_storage ss = addr(t);
    return addr_is_public((struct sockaddr *)&ss);
}

int main(void)
{
    const char *blocked[] = {"127.0.0.1", "127.1.2.3", "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1",
                             "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255",
                             "198.18.0.1", "192.0.2.1", "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1",
                             "::ffff:127.0.0.1", "::ffff:10.1.2.3", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe",
                             "::127.0.0.1", "2001:db8::1", "2002:7f00:1::"};
    const char *open_[] = {"8.8.8.8", "1.1.1.1", "93.184.216.34", "172.32.0.1", "100.128.0.1", "2606:4700::1111",
                           "::ffff:8.8.8.8", "64:ff9b::808:808"};
    for (size_t i = 0; i < sizeof blocked / sizeof *blocked; i++) {
        CHECK(!public_(blocked[i]));
        if (public_(blocked[i])) fprintf(stderr, "  %s passed as public\n", blocked[i]);
    }
    for (size_t i = 0; i < sizeof open_ / sizeof *open_; i++) {
        CHECK(public_(open_[i]));
        if (!public_(open_[i])) fprintf(stderr, "  %s refused\n", open_[i]);
    }

    char err[200];
    addr_policy *p = addr_policy_new("127.0.0.2/32, 10.0.0.0/8,fd00::/8, images.internal", err, sizeof err);
    CHECK(p != NULL);
    struct sockaddr_storage a;
    a = addr("127.0.0.2");
    CHECK(addr_policy_permits(p, (struct sockaddr *)&a, "x"));
    a = addr("127.0.0.1");
    CHECK(!addr_policy_permits(p, (struct sockaddr *)&a, "x"));
    CHECK(addr_policy_permits(p, (struct sockaddr *)&a, "IMAGES.internal")); /* host entry */
    a = addr("10.200.3.4");
    CHECK(addr_policy_permits(p, (struct sockaddr *)&a, NULL));
    a = addr("fd00::5");
    CHECK(addr_policy_permits(p, (struct sockaddr *)&a, NULL));
    a = addr("8.8.8.8");
    CHECK(addr_policy_permits(p, (struct sockaddr *)&a, NULL));
    addr_policy_free(p);

    CHECK(addr_policy_new("10.0.0.0/33", err, sizeof err) == NULL);
    CHECK(strstr(err, "10.0.0.0/33") != NULL);
    CHECK(addr_policy_new("host/8", err, sizeof err) == NULL);
    /* An entry too long to hold is refused, not cut: "127.0.0.1/000...08" cut
     * to "127.0.0.1/000..." would have opened every IPv4 address (/0). */
    char longent[400] = "127.0.0.1/";
    memset(longent + strlen(longent), '0', 300);
    strcat(longent, "8");
    CHECK(addr_policy_new(longent, err, sizeof err) == NULL);
    p = addr_policy_new("", err, sizeof err);
    a = addr("127.0.0.1");
    CHECK(p && !addr_policy_permits(p, (struct sockaddr *)&a, "localhost"));
    addr_policy_free(p);
    return check_report("addr_policy");
}
