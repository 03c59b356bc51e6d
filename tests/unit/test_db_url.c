/* keys/db_url: telling a PostgreSQL URL from a SQLite path, and masking its
 * password wherever the URL is logged or printed. */
#include <string.h>

#include "check.h"
#include "keys/db_url.h"
#include "keys/keystore.h"

static const char *mask(const char *in)
{
    static char out[512];
    db_url_mask(in, out, sizeof out);
    return out;
}

int main(void)
{
    CHECK(db_url_is_postgres("postgresql://u@h/db"));
    CHECK(db_url_is_postgres("postgres://h/db"));
    CHECK(db_url_is_postgres("PostgreSQL://h/db"));
    CHECK(!db_url_is_postgres("/var/lib/sight/sight.db"));
    CHECK(!db_url_is_postgres("postgresql.db"));
    CHECK(!db_url_is_postgres("postgres:/h"));
    CHECK(!db_url_is_postgres(""));
    CHECK(!db_url_is_postgres(NULL));

    /* Paths and URLs without a password come back as they are. */
    CHECK_STR(mask("/var/lib/sight/sight.db"), "/var/lib/sight/sight.db");
    CHECK_STR(mask("data/user:pw@x.db"), "data/user:pw@x.db");
    CHECK_STR(mask("postgresql://sight@db1:5432/sight"), "postgresql://sight@db1:5432/sight");
    CHECK_STR(mask("postgresql://db1/sight"), "postgresql://db1/sight");
    CHECK_STR(mask("postgresql://[::1]:5432/sight"), "postgresql://[::1]:5432/sight");

    /* The userinfo's password. */
    CHECK_STR(mask("postgresql://sight:s3cret@db1:5432/sight"), "postgresql://sight:***@db1:5432/sight");
    CHECK_STR(mask("postgres://u:p%40ss@h/d"), "postgres://u:***@h/d");
    CHECK_STR(mask("postgresql://u:@h/d"), "postgresql://u:***@h/d");
    /* An unescaped '@' inside the password: the userinfo ends at the last one. */
    CHECK_STR(mask("postgresql://u:a@b@h:1/d"), "postgresql://u:***@h:1/d");
    /* No '@' in the authority: a ':' there is the port, not a password. */
    CHECK_STR(mask("postgresql://h:5432/d?x=a@b"), "postgresql://h:5432/d?x=a@b");

    /* A password in the query string, alone or among other parameters. */
    CHECK_STR(mask("postgresql://u@h/d?password=zz"), "postgresql://u@h/d?password=***");
    CHECK_STR(mask("postgresql://h/d?sslmode=require&password=zz&connect_timeout=2"),
              "postgresql://h/d?sslmode=require&password=***&connect_timeout=2");
    CHECK_STR(mask("postgresql://u:p@h/d?PASSWORD=zz#frag"), "postgresql://u:***@h/d?PASSWORD=***#frag");

    /* Truncation keeps the output terminated and never reveals the password. */
    char small[20];
    db_url_mask("postgresql://user:secretsecret@host/db", small, sizeof small);
    CHECK(strlen(small) == sizeof small - 1);
    CHECK(strstr(small, "secret") == NULL);
    db_url_mask("postgresql://u:p@h/d", small, 0); /* no room: nothing written, no crash */

    /* keystore_open sends a URL to PostgreSQL: an unreachable one is an error
     * whose text carries no password (port 1 refuses at once). */
    char err[512];
    keystore *ks = keystore_open("postgresql://u:topsecret@127.0.0.1:1/d?connect_timeout=2", err, sizeof err);
    CHECK(ks == NULL);
    CHECK(err[0] != '\0');
    CHECK(strstr(err, "topsecret") == NULL);
    return check_report("db_url");
}
