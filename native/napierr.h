/* Shared by the addons: an Error for a failed system call ("what: strerror(err)" with .errno set),
   and a call on libuv's thread pool answered with a promise. */
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

/* Queues `exec` on the thread pool and `done` after it; `done` settles *deferred and deletes *work. */
static inline napi_value queue_work_promise(napi_env env, const char *name, napi_async_execute_callback exec,
                                            napi_async_complete_callback done, void *data, napi_deferred *deferred,
                                            napi_async_work *work) {
  napi_value promise, resource;
  napi_create_promise(env, deferred, &promise);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource);
  napi_create_async_work(env, NULL, resource, exec, done, data, work);
  napi_queue_async_work(env, *work);
  return promise;
}
#endif
