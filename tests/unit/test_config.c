#include <stdlib.h>

#include "check.h"
#include "config/config.h"

int main(void)
{
    sight_config c;
    config_defaults(&c);
    CHECK_STR(c.listen_host, "127.0.0.1");
    CHECK_EQ_INT(c.listen_port, 8080);
    CHECK_EQ_INT(c.max_file_bytes, 20 << 20);
    CHECK_EQ_INT(c.max_body_bytes, 100 << 20);
    CHECK_EQ_INT(c.max_files, 32);
    CHECK_EQ_INT(c.max_pixels, 50000000);
    CHECK_EQ_INT(c.max_pixels_heif, 49000000); /* passes a 48 MP phone photo, 8064x6048 */
    CHECK_EQ_INT(c.header_timeout_s, 20);
    CHECK_EQ_INT(c.body_timeout_s, 20);
    CHECK_EQ_INT(c.body_min_rate, 500);
    CHECK_EQ_INT(c.max_parts, 1000);
    CHECK(c.icc_to_srgb); /* a phone's Display P3 photo reaches the models in sRGB */
    CHECK_EQ_INT(config_set(&c, "icc-to-srgb", "false", (char[64]){0}, 64), 0);
    CHECK(!c.icc_to_srgb);
    /* Paths: unset until resolved, then DATA_DIR/sight.db; an explicit --db stays. */
    CHECK_STR(c.db_path, "");
    CHECK_EQ_INT(config_set(&c, "data-dir", "/srv/sight", (char[64]){0}, 64), 0);
    CHECK_EQ_INT(config_resolve_paths(&c), 0);
    CHECK_STR(c.db_path, "/srv/sight/sight.db");
    CHECK(c.ocr_dir[0] != 0);
    CHECK_EQ_INT(config_set(&c, "model", "none", (char[64]){0}, 64), 0);
    CHECK_STR(c.model_path, "none");
    CHECK_EQ_INT(config_set(&c, "header-timeout", "0", (char[64]){0}, 64), 0); /* 0: off */
    CHECK_EQ_INT(c.header_timeout_s, 0);
    CHECK_EQ_INT(config_set(&c, "body-min-rate", "-1", (char[64]){0}, 64), -1);

    CHECK_EQ_INT(config_parse_size("20MiB"), 20 << 20);
    CHECK_EQ_INT(config_parse_size("512k"), 512 << 10);
    CHECK_EQ_INT(config_parse_size("7"), 7);
    CHECK_EQ_INT(config_parse_size("1.5M"), -1);
    CHECK_EQ_INT(config_parse_count("50M"), 50000000);
    CHECK_EQ_INT(config_parse_count("12k"), 12000);
    CHECK_EQ_INT(config_parse_count("5MiB"), -1);
    CHECK_EQ_INT(config_set(&c, "max-pixels", "40M", (char[64]){0}, 64), 0);
    CHECK_EQ_INT(c.max_pixels, 40000000);
    CHECK_EQ_INT(config_set(&c, "max-pixels-heif", "24M", (char[64]){0}, 64), 0);
    CHECK_EQ_INT(c.max_pixels_heif, 24000000);
    CHECK_EQ_INT(config_parse_size("-1"), -1);
    CHECK_EQ_INT(config_parse_size("99999999999999999999G"), -1);

    /* Environment first, then flags override it. */
    setenv("SIGHT_LISTEN", "0.0.0.0:9000", 1);
    setenv("SIGHT_MAX_FILES", "5", 1);
    char *argv[] = {"serve", "--max-files=7", "--db", "/tmp/x.db", "--create-first-key", "--listen", "[::1]:81"};
    CHECK_EQ_INT(config_parse(&c, 7, argv, 1, "serve"), 0);
    CHECK_EQ_INT(c.max_files, 7);
    CHECK_STR(c.db_path, "/tmp/x.db");
    CHECK(c.create_first_key);
    CHECK_STR(c.listen_host, "::1");
    CHECK_EQ_INT(c.listen_port, 81);
    unsetenv("SIGHT_LISTEN");
    unsetenv("SIGHT_MAX_FILES");

    char err[256];
    CHECK_EQ_INT(config_set(&c, "listen", "nohost", err, sizeof err), -1);
    CHECK_EQ_INT(config_set(&c, "listen", "h:70000", err, sizeof err), -1);
    CHECK_EQ_INT(config_set(&c, "workers", "0", err, sizeof err), -1);
    CHECK_EQ_INT(config_set(&c, "workers", "3x", err, sizeof err), -1);
    CHECK_EQ_INT(config_set(&c, "log-level", "loud", err, sizeof err), -1);
    CHECK_EQ_INT(config_set(&c, "nope", "1", err, sizeof err), -1);
    CHECK_EQ_INT(config_set(&c, "listen", ":8081", err, sizeof err), 0);
    CHECK_STR(c.listen_host, "0.0.0.0");

    setenv("SIGHT_WORKERS", "zero", 1);
    char *argv2[] = {"serve"};
    CHECK_EQ_INT(config_parse(&c, 1, argv2, 1, "serve"), -1); /* bad env values are errors too */
    unsetenv("SIGHT_WORKERS");
    char *argv3[] = {"serve", "stray"};
    CHECK_EQ_INT(config_parse(&c, 2, argv3, 1, "serve"), -1);
    return check_report("config");
}
