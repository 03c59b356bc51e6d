/* --redis URLs: the forms the README names, percent-encoded credentials, and
 * bad URLs refused with a message that never holds the password. */
#include <string.h>

#include "check.h"
#include "limits/redis_client.h"

static void ok(const char *url, const char *host, int port, const char *user, const char *pw, int db)
{
    redis_url u;
    char err[200] = "";
    CHECK_EQ_INT(redis_url_parse(url, &u, err, sizeof err), 0);
    CHECK_STR(u.host, host);
    CHECK_EQ_INT(u.port, port);
    CHECK_STR(u.user, user);
    CHECK_STR(u.password, pw);
    CHECK_EQ_INT(u.db, db);
}

static void bad(const char *url)
{
    redis_url u;
    char err[200] = "";
    CHECK_EQ_INT(redis_url_parse(url, &u, err, sizeof err), -1);
    CHECK(err[0] != 0);
    CHECK(strstr(err, "s3cret") == NULL);
}

int main(void)
{
    ok("redis://127.0.0.1:6379", "127.0.0.1", 6379, "", "", 0);
    ok("redis://localhost", "localhost", 6379, "", "", 0);
    ok("redis://localhost/", "localhost", 6379, "", "", 0);
    ok("redis://:s3cret@10.0.0.5:6380/2", "10.0.0.5", 6380, "", "s3cret", 2);
    ok("redis://app:s3cret@redis.internal:7000/15", "redis.internal", 7000, "app", "s3cret", 15);
    ok("redis://:p%40ss%3Aw0rd@h:1/0", "h", 1, "", "p@ss:w0rd", 0);
    ok("redis://:a@b@h:2", "h", 2, "", "a@b", 0); /* the last @ ends the credentials */
    ok("redis://[::1]:6390/3", "::1", 6390, "", "", 3);
    bad("http://localhost:6379");
    bad("redis://");
    bad("redis://:6379");
    bad("redis://host:0");
    bad("redis://host:65536");
    bad("redis://host:12ab");
    bad("redis://host:6379/x");
    bad("redis://host:6379/-1");
    bad("redis://host:6379?db=1");
    bad("redis://s3cret@host:6379"); /* a password needs its colon */
    bad("redis://:s3cret%zz@host:6379");
    bad("redis://:s3cret%00@host:6379");
    bad("redis://ho st:6379");
    bad("redis://[::1:6379");
    return check_report("redis_url");
}
