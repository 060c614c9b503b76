/* An Error for a failed system call, shared by the addons: "what: strerror(err)" with .errno set. */
#ifndef TSBUILD_NAPIERR_H
#define TSBUILD_NAPIERR_H
#include <node_api.h>
#include <stdio.h>
#include <string.h>

static inline napi_value errno_error(napi_env env, const char *what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_value code, text, error;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_int32(env, err, &code);
  napi_create_error(env, NULL, text, &error);
  napi_set_named_property(env, error, "errno", code);
  return error;
}

static inline napi_value throw_errno(napi_env env, const char *what, int err) {
  napi_throw(env, errno_error(env, what, err));
  return NULL;
}
#endif
