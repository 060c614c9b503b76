/* A minimal JSON reader for the sandbox spec: enough for objects, arrays, strings, numbers, bools. */
#ifndef TSB_JSON_H
#define TSB_JSON_H
#include <stddef.h>

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jval {
  enum jtype type;
  double num;
  int boolean;
  char *str;          /* J_STR: NUL-terminated (embedded NULs are rejected) */
  struct jval **items; /* J_ARR values, J_OBJ values */
  char **keys;         /* J_OBJ keys */
  size_t len;
};

struct jval *json_parse(const char *text, const char **err);
struct jval *json_get(const struct jval *obj, const char *key);
const char *json_str(const struct jval *obj, const char *key, const char *dflt);
long long json_int(const struct jval *obj, const char *key, long long dflt);
int json_bool(const struct jval *obj, const char *key, int dflt);
#endif
