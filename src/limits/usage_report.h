/* The usage report of GET /api/v1/usage and `sightd usage`:
 * {"key":{"id","name","limits":{...}},"usage":[{"date", counts...}, ...]},
 * one entry per UTC day from..to ascending, zeros where nothing was used. */
#ifndef SIGHT_LIMITS_USAGE_REPORT_H
#define SIGHT_LIMITS_USAGE_REPORT_H

#include <jansson.h>
#include <stdbool.h>

#include "keys/keystore.h"

/* Longest range a report covers, in days. */
#define USAGE_MAX_DAYS 366

/* Checks a YYYY-MM-DD date (a real one) and gives its midnight (UTC). */
bool usage_parse_date(const char *s, double *t);
/* from/to: YYYY-MM-DD, from <= to, at most USAGE_MAX_DAYS apart (checked by
 * the caller with usage_parse_date). NULL when the store fails. */
json_t *usage_report(keystore *ks, const key_info *k, const char *from, const char *to);
json_t *usage_limits_json(const key_limits *l);

#endif
