/* Which network addresses a user-supplied URL may reach.
 *
 * Only globally routable unicast addresses, unless an allowlist entry opens a
 * range or a host: loopback, private, link-local (169.254.169.254 is the cloud
 * metadata service), CGNAT, multicast, reserved, unique-local IPv6 and the
 * IPv4-mapped / NAT64 forms of all of these are refused. */
#ifndef SIGHT_FETCH_ADDR_POLICY_H
#define SIGHT_FETCH_ADDR_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

typedef struct addr_policy addr_policy;

/* allow: comma-separated CIDRs ("127.0.0.1/32", "10.0.0.0/8", "::1/128") and
 * host names ("images.internal"); NULL or "" = none. NULL and err on a bad entry. */
addr_policy *addr_policy_new(const char *allow, char *err, size_t err_len);
void addr_policy_free(addr_policy *p);

/* May a connection go to sa (reached through host name `host`)? */
bool addr_policy_permits(const addr_policy *p, const struct sockaddr *sa, const char *host);

/* Is the address globally routable unicast (ignoring any allowlist)? */
bool addr_is_public(const struct sockaddr *sa);

#endif
