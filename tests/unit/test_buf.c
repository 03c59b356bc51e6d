#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "util/array.h"
#include "util/buf.h"

int main(void)
{
    buf b;
    buf_init(&b, 10);
    CHECK_STR(buf_str(&b), "");
    CHECK_EQ_INT(buf_room(&b), 0);
    CHECK_EQ_INT(buf_add(&b, "hello", 5), BUF_OK);
    CHECK_EQ_INT(buf_printf(&b, "%d%c", 42, '!'), BUF_OK);
    CHECK_STR(buf_str(&b), "hello42!");
    /* The cap is exact: 10 bytes fit, the 11th is refused and nothing is added. */
    CHECK_EQ_INT(buf_add(&b, "abc", 3), BUF_TOO_BIG);
    CHECK_EQ_INT(b.len, 8);
    CHECK_EQ_INT(buf_printf(&b, "%s", "xyz"), BUF_TOO_BIG);
    CHECK_STR(buf_str(&b), "hello42!");
    CHECK_EQ_INT(buf_add(&b, "ab", 2), BUF_OK);
    CHECK_EQ_INT(b.len, 10);
    CHECK_EQ_INT(buf_addc(&b, 'x'), BUF_TOO_BIG);
    CHECK_EQ_INT(buf_add(&b, "", 0), BUF_OK);
    CHECK(b.cap <= 11); /* never allocates past the cap */
    buf_consume(&b, 5);
    CHECK_STR(buf_str(&b), "42!ab");
    buf_consume(&b, 99);
    CHECK_STR(buf_str(&b), "");
    CHECK_EQ_INT(b.len, 0);
    buf_free(&b);

    /* Reserve and commit: writing in place, the room never passes the cap. */
    buf_init(&b, 1000);
    CHECK_EQ_INT(buf_reserve(&b, 10), BUF_OK);
    CHECK(buf_room(&b) >= 10);
    memcpy(b.data, "abc", 3);
    buf_commit(&b, 3);
    CHECK_STR(buf_str(&b), "abc");
    CHECK_EQ_INT(buf_reserve(&b, 5000), BUF_OK);
    CHECK_EQ_INT(buf_room(&b), 997);
    size_t n;
    char *s = buf_take(&b, &n);
    CHECK_STR(s, "abc");
    CHECK_EQ_INT(n, 3);
    CHECK(b.data == NULL && b.len == 0);
    free(s);
    /* Taking an empty buffer gives an empty string, not NULL. */
    s = buf_take(&b, &n);
    CHECK_STR(s, "");
    CHECK_EQ_INT(n, 0);
    free(s);

    /* Growth across many appends keeps every byte. */
    for (int i = 0; i < 500; i++) CHECK_EQ_INT(buf_addc(&b, (char)('a' + i % 26)), BUF_OK);
    CHECK_EQ_INT(b.len, 500);
    CHECK(b.data[499] == 'a' + 499 % 26 && b.data[500] == 0);
    buf_reset(&b);
    CHECK_STR(buf_str(&b), "");
    buf_free(&b);

    /* A cap of zero takes nothing. */
    buf_init(&b, 0);
    CHECK_EQ_INT(buf_addc(&b, 'a'), BUF_TOO_BIG);
    CHECK_EQ_INT(buf_add(&b, "", 0), BUF_OK);
    CHECK_STR(buf_str(&b), "");
    buf_free(&b);

    /* array_resize refuses a size that overflows and keeps the old block. */
    int *a = array_resize(NULL, 4, sizeof *a);
    CHECK(a != NULL);
    a[3] = 7;
    CHECK(array_resize(a, SIZE_MAX / 2, sizeof *a) == NULL);
    CHECK_EQ_INT(a[3], 7);
    free(a);

    /* array_push grows by doubling, zeroes each new element and keeps the old ones. */
    int *v = NULL;
    size_t len = 0, cap = 0;
    for (int i = 0; i < 40; i++) {
        int *slot = array_push((void **)&v, &len, &cap, sizeof *v);
        CHECK(slot != NULL && *slot == 0);
        if (slot) *slot = i;
    }
    CHECK_EQ_INT(len, 40);
    CHECK_EQ_INT(cap, 64);
    CHECK_EQ_INT(v[0] + v[17] + v[39], 56);
    free(v);
    return check_report("buf");
}
