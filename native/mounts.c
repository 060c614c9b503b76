/*
 * tsbuild-mounts.node: host mounts, unmounts and xattr listings made by the tsbuild process itself,
 * for the work of COPY, WORKDIR, layer commits and unpacking. The helper's `serve` process did them
 * (native/sandbox.c), and starting it cost every build step and pull 8-10 ms before its first mount
 * on a 2-core VM (a spawn blocks Node until the child has exec'd). The same mechanism, as free of
 * policy: TypeScript decides what is mounted where and which xattrs belong in a layer
 * (src/runtime/mountserver.ts).
 *
 * Every call runs on libuv's thread pool and answers with a promise: unmounting an overlay that is
 * not volatile syncs the whole filesystem under it, and a listing walks a whole tree.
 * A mount with a working directory (overlay's lowerdirs relative to the snapshots directory, to stay
 * within a page of options) runs on a thread of its own that first unshares its filesystem context
 * (CLONE_FS): a chdir on a pool thread would move the working directory of every thread of Node.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <node_api.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "napierr.h"
#include "xattrs.h"

enum op { MOUNT, UMOUNT, XATTRS };

typedef struct {
  enum op op;
  /* MOUNT: type, source, target, data, cwd (NULL: none); UMOUNT: target; XATTRS: dir. */
  char *type, *source, *target, *data, *cwd;
  unsigned long flags;
  /* XATTRS: the relative paths (NULL: the whole tree). */
  char **paths;
  size_t npaths;
  char *out;
  size_t size;
  int err;
  const char *failed;
  napi_deferred deferred;
  napi_async_work work;
} Call;

static void mount_call(Call *c) {
  if (mount(c->source, c->target, c->type, c->flags, *c->data ? c->data : NULL) != 0) c->err = errno, c->failed = "mount";
}

static void *mount_in_cwd(void *arg) {
  Call *c = arg;
  if (unshare(CLONE_FS) != 0) c->err = errno, c->failed = "unshare";
  else if (chdir(c->cwd) != 0) c->err = errno, c->failed = "chdir";
  else mount_call(c);
  return NULL;
}

static void run_call(napi_env env, void *data) {
  (void)env;
  Call *c = data;
  if (c->op == MOUNT) {
    if (!c->cwd) {
      mount_call(c);
      return;
    }
    pthread_t t;
    int e = pthread_create(&t, NULL, mount_in_cwd, c);
    if (e) c->err = e, c->failed = "pthread_create";
    else pthread_join(t, NULL);
  } else if (c->op == UMOUNT) {
    if (umount2(c->target, MNT_DETACH) != 0) c->err = errno, c->failed = "umount";
  } else {
    c->err = list_xattrs(c->target, c->paths, c->npaths, &c->out, &c->size);
    if (c->err) c->failed = "walk";
  }
}

static void free_call(Call *c) {
  free(c->type);
  free(c->source);
  free(c->target);
  free(c->data);
  free(c->cwd);
  for (size_t i = 0; i < c->npaths; i++) free(c->paths[i]);
  free(c->paths);
  free(c->out);
  free(c);
}

static void buffer_freed(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

static void call_done(napi_env env, napi_status status, void *data) {
  Call *c = data;
  napi_value v;
  if (status == napi_ok && c->err == 0) {
    if (c->op == XATTRS) {
      /* The listing's memory becomes the Buffer's. */
      if (c->size == 0) napi_create_buffer(env, 0, NULL, &v);
      else napi_create_external_buffer(env, c->size, c->out, buffer_freed, NULL, &v);
      if (c->size > 0) c->out = NULL;
    } else napi_get_undefined(env, &v);
    napi_resolve_deferred(env, c->deferred, v);
  } else napi_reject_deferred(env, c->deferred, errno_error(env, c->failed ? c->failed : "cancelled", c->err ? c->err : ECANCELED));
  napi_delete_async_work(env, c->work);
  free_call(c);
}

/* A string (UTF-8) or a Buffer (bytes as they are), as a malloc'd C string; NULL if it is neither or holds a NUL. */
static char *bytes_of(napi_env env, napi_value v) {
  bool isbuf = false;
  napi_is_buffer(env, v, &isbuf);
  if (isbuf) {
    void *d;
    size_t n;
    napi_get_buffer_info(env, v, &d, &n);
    if (memchr(d, 0, n)) return NULL;
    char *s = malloc(n + 1);
    memcpy(s, d, n);
    s[n] = 0;
    return s;
  }
  size_t n;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &n) != napi_ok) return NULL;
  char *s = malloc(n + 1);
  napi_get_value_string_utf8(env, v, s, n + 1, &n);
  if (strlen(s) != n) {
    free(s);
    return NULL;
  }
  return s;
}

static napi_value start(napi_env env, Call *c) {
  return queue_work_promise(env, "tsbuild-mounts", run_call, call_done, c, &c->deferred, &c->work);
}

/* A call of `op`, or NULL with an error thrown when there is no memory for one. */
static Call *new_call(napi_env env, enum op op) {
  Call *c = calloc(1, sizeof *c);
  if (!c) throw_errno(env, "tsbuild-mounts", ENOMEM);
  else c->op = op;
  return c;
}

static napi_value bad_args(napi_env env, Call *c, const char *usage) {
  free_call(c);
  napi_throw_type_error(env, NULL, usage);
  return NULL;
}

/* mount(type, source, target, flags, data, cwd?) -> Promise<void> */
static napi_value Mount(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value a[6];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  Call *c = new_call(env, MOUNT);
  if (!c) return NULL;
  const char *usage = "mount(type, source, target, flags, data, cwd?): strings or Buffers without NULs, flags a number";
  if (argc < 5) return bad_args(env, c, usage);
  c->type = bytes_of(env, a[0]);
  c->source = bytes_of(env, a[1]);
  c->target = bytes_of(env, a[2]);
  c->data = bytes_of(env, a[4]);
  int64_t flags;
  if (!c->type || !c->source || !c->target || !c->data || napi_get_value_int64(env, a[3], &flags) != napi_ok || flags < 0) return bad_args(env, c, usage);
  c->flags = (unsigned long)flags;
  if (argc >= 6) {
    napi_valuetype t;
    napi_typeof(env, a[5], &t);
    if (t != napi_undefined && !(c->cwd = bytes_of(env, a[5]))) return bad_args(env, c, usage);
  }
  return start(env, c);
}

/* umount(target) -> Promise<void>: umount2(MNT_DETACH) */
static napi_value Umount(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value a[1];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  Call *c = new_call(env, UMOUNT);
  if (!c) return NULL;
  if (argc < 1 || !(c->target = bytes_of(env, a[0]))) return bad_args(env, c, "umount(target): a string or Buffer without NULs");
  return start(env, c);
}

/* xattrs(dir, paths?) -> Promise<Buffer>: relpath\0name\0hexvalue\0 for every xattr under dir, or of the paths */
static napi_value Xattrs(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value a[2];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  Call *c = new_call(env, XATTRS);
  if (!c) return NULL;
  const char *usage = "xattrs(dir, paths?): a string or Buffer, and an array of them";
  if (argc < 1 || !(c->target = bytes_of(env, a[0]))) return bad_args(env, c, usage);
  napi_valuetype t = napi_undefined;
  if (argc >= 2) napi_typeof(env, a[1], &t);
  if (t != napi_undefined) {
    bool arr = false;
    napi_is_array(env, a[1], &arr);
    if (!arr) return bad_args(env, c, usage);
    uint32_t n;
    napi_get_array_length(env, a[1], &n);
    if (!(c->paths = calloc(n ? n : 1, sizeof *c->paths))) {
      free_call(c);
      return throw_errno(env, "tsbuild-mounts", ENOMEM);
    }
    for (uint32_t i = 0; i < n; i++) {
      napi_value v;
      napi_get_element(env, a[1], i, &v);
      if (!(c->paths[i] = bytes_of(env, v))) return bad_args(env, c, usage);
      c->npaths = i + 1;
    }
  }
  return start(env, c);
}

NAPI_MODULE_INIT() {
  napi_property_descriptor d[] = {
    {"mount", NULL, Mount, NULL, NULL, NULL, napi_default, NULL},
    {"umount", NULL, Umount, NULL, NULL, NULL, napi_default, NULL},
    {"xattrs", NULL, Xattrs, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof d / sizeof *d, d);
  return exports;
}
