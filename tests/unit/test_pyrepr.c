#include <stdlib.h>

#include "check.h"
#include "detect/pyrepr.h"

int main(void)
{
    char **names;
    int n;
    CHECK_EQ_INT(pyrepr_parse_names("{0: 'person', 1: 'bicycle', 2: \"it's\", 3: 'a\\'b'}", &names, &n), 0);
    CHECK_EQ_INT(n, 4);
    CHECK_STR(names[0], "person");
    CHECK_STR(names[2], "it's");
    CHECK_STR(names[3], "a'b");
    pyrepr_free_names(names, n);
    CHECK_EQ_INT(pyrepr_parse_names("['cat', 'dog']", &names, &n), 0);
    CHECK_EQ_INT(n, 2);
    CHECK_STR(names[1], "dog");
    pyrepr_free_names(names, n);
    /* Gaps get their number as the name. */
    CHECK_EQ_INT(pyrepr_parse_names("{0: 'a', 2: 'c'}", &names, &n), 0);
    CHECK_EQ_INT(n, 3);
    CHECK_STR(names[1], "1");
    pyrepr_free_names(names, n);
    const char *bad[] = {"", "{", "{0: person}", "{0 'a'}", "{-1: 'a'}", "{0: 'a'} x", "{}", "{999999999: 'a'}",
                         "{0: 'unterminated}", "['a' 'b']", "42"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        names = NULL;
        n = 0;
        CHECK_EQ_INT(pyrepr_parse_names(bad[i], &names, &n), -1);
    }
    int v[2];
    CHECK_EQ_INT(pyrepr_parse_ints("[640, 480]", v, 2), 2);
    CHECK_EQ_INT(v[0], 640);
    CHECK_EQ_INT(v[1], 480);
    CHECK_EQ_INT(pyrepr_parse_ints("32", v, 2), 1);
    CHECK_EQ_INT(v[0], 32);
    CHECK_EQ_INT(pyrepr_parse_ints("(320, 320)", v, 2), 2);
    CHECK_EQ_INT(pyrepr_parse_ints("[640, x]", v, 2), -1);
    CHECK_EQ_INT(pyrepr_parse_ints("[1, 2, 3]", v, 2), 2);
    CHECK_EQ_INT(pyrepr_parse_bool("True"), 1);
    CHECK_EQ_INT(pyrepr_parse_bool("False"), 0);
    CHECK_EQ_INT(pyrepr_parse_bool("maybe"), -1);
    return check_report("pyrepr");
}
