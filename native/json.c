#include "json.h"
#include <stdlib.h>
#include <string.h>

struct parser { const char *p; const char *err; int depth; };

static void ws(struct parser *ps) { while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r') ps->p++; }
static struct jval *value(struct parser *ps);
static struct jval *mk(enum jtype t) { struct jval *v = calloc(1, sizeof *v); if (v) v->type = t; return v; }

static int push(struct jval *v, char *key, struct jval *item) {
  struct jval **items = realloc(v->items, (v->len + 1) * sizeof *items);
  if (!items) return -1;
  v->items = items;
  if (v->type == J_OBJ) {
    char **keys = realloc(v->keys, (v->len + 1) * sizeof *keys);
    if (!keys) return -1;
    v->keys = keys;
    v->keys[v->len] = key;
  }
  v->items[v->len++] = item;
  return 0;
}

static void utf8(char **o, unsigned cp) {
  char *q = *o;
  if (cp < 0x80) *q++ = (char)cp;
  else if (cp < 0x800) { *q++ = (char)(0xC0 | (cp >> 6)); *q++ = (char)(0x80 | (cp & 0x3F)); }
  else if (cp < 0x10000) { *q++ = (char)(0xE0 | (cp >> 12)); *q++ = (char)(0x80 | ((cp >> 6) & 0x3F)); *q++ = (char)(0x80 | (cp & 0x3F)); }
  else { *q++ = (char)(0xF0 | (cp >> 18)); *q++ = (char)(0x80 | ((cp >> 12) & 0x3F)); *q++ = (char)(0x80 | ((cp >> 6) & 0x3F)); *q++ = (char)(0x80 | (cp & 0x3F)); }
  *o = q;
}

static int hex4(const char *s, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = s[i]; v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return -1;
  }
  *out = v; return 0;
}

static char *string(struct parser *ps) {
  if (*ps->p != '"') { ps->err = "expected string"; return NULL; }
  ps->p++;
  const char *s = ps->p;
  size_t n = 0;
  while (s[n] && s[n] != '"') { if (s[n] == '\\' && s[n + 1]) n++; n++; }
  char *out = malloc(n * 2 + 8), *o = out;
  if (!out) { ps->err = "out of memory"; return NULL; }
  while (*ps->p && *ps->p != '"') {
    char c = *ps->p++;
    if (c != '\\') { *o++ = c; continue; }
    c = *ps->p++;
    switch (c) {
      case '"': *o++ = '"'; break; case '\\': *o++ = '\\'; break; case '/': *o++ = '/'; break;
      case 'b': *o++ = '\b'; break; case 'f': *o++ = '\f'; break; case 'n': *o++ = '\n'; break;
      case 'r': *o++ = '\r'; break; case 't': *o++ = '\t'; break;
      case 'u': {
        unsigned cp;
        if (hex4(ps->p, &cp)) { ps->err = "bad \\u escape"; free(out); return NULL; }
        ps->p += 4;
        if (cp >= 0xD800 && cp < 0xDC00 && ps->p[0] == '\\' && ps->p[1] == 'u') {
          unsigned lo;
          if (!hex4(ps->p + 2, &lo) && lo >= 0xDC00 && lo < 0xE000) { cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00); ps->p += 6; }
        }
        if (cp == 0) { ps->err = "NUL in string"; free(out); return NULL; }
        utf8(&o, cp);
        break;
      }
      default: ps->err = "bad escape"; free(out); return NULL;
    }
  }
  if (*ps->p != '"') { ps->err = "unterminated string"; free(out); return NULL; }
  ps->p++;
  *o = 0;
  return out;
}

static struct jval *value(struct parser *ps) {
  if (++ps->depth > 64) { ps->err = "too deep"; return NULL; }
  ws(ps);
  struct jval *v = NULL;
  char c = *ps->p;
  if (c == '{' || c == '[') {
    v = mk(c == '{' ? J_OBJ : J_ARR);
    if (!v) return NULL;
    ps->p++; ws(ps);
    char close = c == '{' ? '}' : ']';
    if (*ps->p == close) { ps->p++; ps->depth--; return v; }
    for (;;) {
      char *key = NULL;
      ws(ps);
      if (v->type == J_OBJ) {
        key = string(ps); if (!key) return NULL;
        ws(ps); if (*ps->p != ':') { ps->err = "expected ':'"; return NULL; }
        ps->p++;
      }
      struct jval *item = value(ps);
      if (!item || push(v, key, item)) return NULL;
      ws(ps);
      if (*ps->p == ',') { ps->p++; continue; }
      if (*ps->p == close) { ps->p++; break; }
      ps->err = "expected ',' or close"; return NULL;
    }
  } else if (c == '"') {
    v = mk(J_STR); if (!v) return NULL;
    v->str = string(ps); if (!v->str) return NULL;
  } else if (!strncmp(ps->p, "true", 4)) { v = mk(J_BOOL); v->boolean = 1; ps->p += 4; }
  else if (!strncmp(ps->p, "false", 5)) { v = mk(J_BOOL); ps->p += 5; }
  else if (!strncmp(ps->p, "null", 4)) { v = mk(J_NULL); ps->p += 4; }
  else if (c == '-' || (c >= '0' && c <= '9')) {
    char *end; v = mk(J_NUM); v->num = strtod(ps->p, &end);
    if (end == ps->p) { ps->err = "bad number"; return NULL; }
    ps->p = end;
  } else { ps->err = "unexpected character"; return NULL; }
  ps->depth--;
  return v;
}

struct jval *json_parse(const char *text, const char **err) {
  struct parser ps = { text, NULL, 0 };
  struct jval *v = value(&ps);
  if (v) { ws(&ps); if (*ps.p) { ps.err = "trailing data"; v = NULL; } }
  if (!v && err) *err = ps.err ? ps.err : "invalid JSON";
  return v;
}

struct jval *json_get(const struct jval *o, const char *key) {
  if (!o || o->type != J_OBJ) return NULL;
  for (size_t i = 0; i < o->len; i++) if (!strcmp(o->keys[i], key)) return o->items[i];
  return NULL;
}
const char *json_str(const struct jval *o, const char *key, const char *d) {
  struct jval *v = json_get(o, key); return v && v->type == J_STR ? v->str : d;
}
long long json_int(const struct jval *o, const char *key, long long d) {
  struct jval *v = json_get(o, key); return v && v->type == J_NUM ? (long long)v->num : d;
}
int json_bool(const struct jval *o, const char *key, int d) {
  struct jval *v = json_get(o, key); return v && v->type == J_BOOL ? v->boolean : d;
}
