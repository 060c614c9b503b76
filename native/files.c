/*
 * tsbuild-files.node: many small regular files made in one call, for layer apply.
 *
 * Mechanism only. TypeScript decides every name (resolved inside the root, parents made), owner,
 * mode and time (src/fsutil/filebatch.ts, src/image/extract.ts); this makes each file exactly so and
 * says, per file, which call failed with which errno. It never replaces, follows or removes anything:
 * the file is created with O_EXCL|O_NOFOLLOW, and any failure is handed back to TypeScript, which
 * makes that file again its own way (replacing what holds the name, or reporting the error).
 *
 * Why: a layer of 20,000 small files cost four or five system calls per file through Node's fs
 * bindings, 480 ms of a 590 ms apply on a tmpfs, where the same calls take about 200 ms from C.
 *
 * Also addInodeFlags: a directory's inode flags (chattr's), which Node has no binding for.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <node_api.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* Per file: path offset and length (NUL after it), data offset and length, mode, uid, gid, mtime (s). */
#define FIELDS 8

/* The call that failed, in the high half of a file's status; the errno in the low half. */
enum step { OK = 0, OPEN = 1, WRITE = 2, FSTAT = 3, FCHOWN = 4, FCHMOD = 5, FUTIMENS = 6, CLOSE = 7 };

static int make_file(const char *path, const uint8_t *data, size_t len, mode_t mode, uid_t uid, gid_t gid, double mtime) {
  /* Set-id and sticky bits only through fchmod, after the fchown that would clear them. */
  int plain = (mode & 07000) == 0;
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, plain ? mode : 0600);
  if (fd < 0) return OPEN << 16 | errno;
  int st = OK, err = 0;
  size_t done = 0;
  while (done < len) {
    ssize_t n = write(fd, data + done, len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      st = WRITE, err = n < 0 ? errno : EIO;
      goto out;
    }
    done += (size_t)n;
  }
  /* What open(2) gave (the umask, a set-group-id parent, a default ACL) is observed, not predicted. */
  struct stat s;
  if (fstat(fd, &s) != 0) {
    st = FSTAT, err = errno;
    goto out;
  }
  int chowned = 0;
  if (s.st_uid != uid || s.st_gid != gid) {
    if (fchown(fd, uid, gid) != 0) {
      st = FCHOWN, err = errno;
      goto out;
    }
    chowned = 1;
  }
  if ((s.st_mode & 07777) != mode || (chowned && (mode & 06000))) {
    if (fchmod(fd, mode) != 0) {
      st = FCHMOD, err = errno;
      goto out;
    }
  }
  struct timespec t[2];
  time_t sec = (time_t)mtime;
  if ((double)sec > mtime) sec--; /* toward minus infinity, for times before 1970 */
  t[0].tv_sec = sec;
  t[0].tv_nsec = (long)((mtime - (double)sec) * 1e9);
  t[1] = t[0];
  if (futimens(fd, t) != 0) st = FUTIMENS, err = errno;
out:
  if (close(fd) != 0 && st == OK) st = CLOSE, err = errno;
  return st == OK ? 0 : st << 16 | err;
}

/*
 * makeFiles(meta: Float64Array, bytes: Buffer, start, count, status: Int32Array(2)): makes files
 * start..count-1 in order and stops at the first that fails: what follows may depend on how
 * TypeScript settles it. Then status[0] is the index reached (count when all were made) and
 * status[1] 0 or the failed step << 16 | errno. Every offset is checked before anything is made.
 *
 * On the calling thread: the same batch on libuv's thread pool, overlapped with reading the next,
 * took 545 ms against 446 ms for 20,000 files on a tmpfs (docs/performance.md).
 */
static napi_value MakeFiles(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value a[5];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  napi_typedarray_type mt, stt;
  size_t mlen, slen, blen;
  void *mp, *sp, *bp;
  uint32_t start, count;
  if (argc < 5 || napi_get_typedarray_info(env, a[0], &mt, &mlen, &mp, NULL, NULL) != napi_ok || mt != napi_float64_array ||
      napi_get_buffer_info(env, a[1], &bp, &blen) != napi_ok || napi_get_value_uint32(env, a[2], &start) != napi_ok ||
      napi_get_value_uint32(env, a[3], &count) != napi_ok ||
      napi_get_typedarray_info(env, a[4], &stt, &slen, &sp, NULL, NULL) != napi_ok || stt != napi_int32_array ||
      (size_t)count * FIELDS > mlen || start > count || slen < 2) {
    napi_throw_type_error(env, NULL, "expected (meta: Float64Array, bytes: Buffer, start, count, status: Int32Array(2)) with meta for count files");
    return NULL;
  }
  const double *m = mp;
  const uint8_t *bytes = bp;
  int32_t *status = sp;
  for (uint32_t i = start; i < count; i++) {
    const double *f = m + (size_t)i * FIELDS;
    double po = f[0], pl = f[1], dof = f[2], dl = f[3];
    if (!(po >= 0 && pl >= 1 && po + pl < (double)blen && dof >= 0 && dl >= 0 && dof + dl <= (double)blen) ||
        bytes[(size_t)(po + pl)] != 0 || memchr(bytes + (size_t)po, 0, (size_t)pl) != NULL) {
      napi_throw_range_error(env, NULL, "makeFiles: a file's path or data lies outside the buffer, or its path is not NUL-terminated");
      return NULL;
    }
  }
  uint32_t i = start;
  int32_t st = 0;
  for (; i < count; i++) {
    const double *f = m + (size_t)i * FIELDS;
    st = make_file((const char *)bytes + (size_t)f[0], bytes + (size_t)f[2], (size_t)f[3], (mode_t)f[4] & 07777, (uid_t)f[5], (gid_t)f[6], f[7]);
    if (st != 0) break;
  }
  status[0] = (int32_t)i;
  status[1] = st;
  return NULL;
}

/*
 * addInodeFlags(dir: string, flags: number): 0 or an errno. Adds `flags` (FS_*_FL) to a directory's
 * inode flags, as `chattr +...` does: FS_IOC_GETFLAGS, then FS_IOC_SETFLAGS only when one is missing.
 * The directory is opened with O_NOFOLLOW. Which flags, and what a refusal means, is TypeScript's (a
 * filesystem without such flags answers ENOTTY or EOPNOTSUPP).
 */
static napi_value AddInodeFlags(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value a[2];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  char path[4096];
  size_t plen;
  uint32_t add;
  if (argc < 2 || napi_get_value_string_utf8(env, a[0], path, sizeof path, &plen) != napi_ok || plen == 0 || plen >= sizeof path - 1 ||
      napi_get_value_uint32(env, a[1], &add) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected (dir: string, flags: number), the path shorter than 4095 bytes");
    return NULL;
  }
  int err = 0;
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) err = errno;
  else {
    /* The kernel reads and writes an int, whatever the ioctl's declared type says. */
    int flags = 0;
    if (ioctl(fd, FS_IOC_GETFLAGS, &flags) != 0) err = errno;
    else if (((unsigned)flags & add) != add) {
      flags = (int)((unsigned)flags | add);
      if (ioctl(fd, FS_IOC_SETFLAGS, &flags) != 0) err = errno;
    }
    close(fd);
  }
  napi_value r;
  napi_create_int32(env, err, &r);
  return r;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = {
    {"makeFiles", NULL, MakeFiles, NULL, NULL, NULL, napi_default, NULL},
    {"addInodeFlags", NULL, AddInodeFlags, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
