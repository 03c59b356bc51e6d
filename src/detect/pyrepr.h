/* Ultralytics writes ONNX metadata values as Python reprs, not JSON:
 *   names  = "{0: 'person', 1: 'bicycle', ...}"   (or a list: "['person', ...]")
 *   imgsz  = "[640, 640]"  stride = "32"  end2end = "True"
 * These parsers read exactly that much Python literal syntax, defensively:
 * the metadata comes from a file the user brought. */
#ifndef SIGHT_DETECT_PYREPR_H
#define SIGHT_DETECT_PYREPR_H

/* Class names indexed by id; ids missing from a dict get their number as a
 * name. Returns 0 and a malloc'd array of malloc'd strings (free with
 * pyrepr_free_names), or -1 when s is not such a literal. */
int pyrepr_parse_names(const char *s, char ***names, int *n);
void pyrepr_free_names(char **names, int n);

/* "[640, 640]", "(640, 480)" or "640". Returns the count read (<= max), or -1. */
int pyrepr_parse_ints(const char *s, int *vals, int max);

/* "True"/"False" (also lower case, 1/0). Returns 1, 0, or -1 when neither. */
int pyrepr_parse_bool(const char *s);

#endif
