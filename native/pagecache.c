/*
 * tsbuild-pagecache.node: two file calls Node has no binding for, so a large streamed write can start
 * its writeback as it goes, and a reader can give back the page cache of what it has read.
 *
 * Mechanism only: which ranges to write back and which to drop is decided in TypeScript
 * (src/fsutil/pagecache.ts). Both calls are advice to the kernel: sync_file_range(SYNC_FILE_RANGE_WRITE)
 * starts writeback without waiting for it, and POSIX_FADV_DONTNEED drops the clean pages of a range.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "napierr.h"

/*
 * Both calls run on libuv's thread pool and answer with a promise: sync_file_range blocks when the
 * device's queue is full and fadvise starts writeback of dirty pages first, and either would stall
 * Node's event loop (a download, its inflation and hashing) behind the disk.
 */
enum op { WRITEBACK, DROP };

typedef struct {
  enum op op;
  int fd;
  int64_t off, len;
  int err;
  napi_deferred deferred;
  napi_async_work work;
} Advice;

static void run_advice(napi_env env, void *data) {
  (void)env;
  Advice *a = data;
  if (a->op == WRITEBACK) a->err = sync_file_range(a->fd, a->off, a->len, SYNC_FILE_RANGE_WRITE) == 0 ? 0 : errno;
  else a->err = posix_fadvise(a->fd, a->off, a->len, POSIX_FADV_DONTNEED);
}

static void advice_done(napi_env env, napi_status status, void *data) {
  Advice *a = data;
  napi_value v;
  if (status == napi_ok && a->err == 0) {
    napi_get_undefined(env, &v);
    napi_resolve_deferred(env, a->deferred, v);
  } else {
    const char *what = a->op == WRITEBACK ? "sync_file_range" : "posix_fadvise";
    napi_reject_deferred(env, a->deferred, errno_error(env, what, a->err ? a->err : ECANCELED));
  }
  napi_delete_async_work(env, a->work);
  free(a);
}

/* (fd, offset, length): non-negative integers; a promise of the call on the thread pool. */
static napi_value advise(napi_env env, napi_callback_info info, enum op op) {
  size_t argc = 3;
  napi_value a[3];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  int32_t fd;
  int64_t off, len;
  if (argc < 3 || napi_get_value_int32(env, a[0], &fd) != napi_ok || napi_get_value_int64(env, a[1], &off) != napi_ok ||
      napi_get_value_int64(env, a[2], &len) != napi_ok || fd < 0 || off < 0 || len < 0) {
    napi_throw_type_error(env, NULL, "expected (fd, offset, length): non-negative integers");
    return NULL;
  }
  Advice *ad = calloc(1, sizeof *ad);
  if (!ad) return throw_errno(env, "advice", ENOMEM);
  *ad = (Advice){.op = op, .fd = fd, .off = off, .len = len};
  return queue_work_promise(env, "tsbuild.pagecache", run_advice, advice_done, ad, &ad->deferred, &ad->work);
}

/* startWriteback(fd, offset, length): queue the range's dirty pages for writing (length 0: to the end). */
static napi_value StartWriteback(napi_env env, napi_callback_info info) { return advise(env, info, WRITEBACK); }

/* dropCache(fd, offset, length): drop the range's clean pages from the page cache (length 0: to the end). */
static napi_value DropCache(napi_env env, napi_callback_info info) { return advise(env, info, DROP); }

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = {
    {"startWriteback", NULL, StartWriteback, NULL, NULL, NULL, napi_default, NULL},
    {"dropCache", NULL, DropCache, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
