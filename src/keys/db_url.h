/* The --db value: a SQLite path or a PostgreSQL URL. A leaf, so the CLI, the
 * server's log lines and the unit tests share one reading of it. */
#ifndef SIGHT_KEYS_DB_URL_H
#define SIGHT_KEYS_DB_URL_H

#include <stdbool.h>
#include <stddef.h>

/* "postgresql://..." or "postgres://..." (the schemes libpq accepts). */
bool db_url_is_postgres(const char *s);

/* s with any password replaced by "***", for logs and error messages: the
 * userinfo's "user:PASSWORD@" and a "password=..." query parameter. A SQLite
 * path comes back unchanged. Always NUL-terminates out (truncating). */
void db_url_mask(const char *s, char *out, size_t out_len);

#endif
