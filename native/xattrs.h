/*
 * The xattr listing shared by the helper's `serve` (native/sandbox.c) and the mounts addon
 * (native/mounts.c): the extended attributes of every entry under a directory (not the directory
 * itself), or of the relative paths named (missing ones skipped), as relpath\0name\0hexvalue\0.
 * Which ones belong in a layer is policy, decided in TypeScript. Thread-safe: the walk's state is
 * per thread (nftw's callback takes no argument), and the addon lists on several pool threads.
 */
#ifndef TSBUILD_XATTRS_H
#define TSBUILD_XATTRS_H
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

static __thread FILE *xattr_out;
static __thread const char *xattr_root;

static void emit_xattrs(const char *path, const char *rel) {
  FILE *o = xattr_out;
  ssize_t len = llistxattr(path, NULL, 0);
  if (len <= 0) return;
  char *names = malloc(len);
  len = llistxattr(path, names, len);
  for (ssize_t i = 0; i < len; i += strlen(names + i) + 1) {
    const char *name = names + i;
    ssize_t vlen = lgetxattr(path, name, NULL, 0);
    if (vlen < 0) continue;
    unsigned char *v = malloc(vlen > 0 ? vlen : 1);
    vlen = lgetxattr(path, name, v, vlen);
    if (vlen < 0) { free(v); continue; }
    fputs(rel, o); fputc(0, o);
    fputs(name, o); fputc(0, o);
    for (ssize_t j = 0; j < vlen; j++) fprintf(o, "%02x", v[j]);
    fputc(0, o);
    free(v);
  }
  free(names);
}

static int xattr_cb(const char *path, const struct stat *st, int type, struct FTW *ftw) {
  (void)st; (void)type;
  if (ftw->level == 0) return 0;
  const char *rel = path + strlen(xattr_root);
  while (*rel == '/') rel++;
  emit_xattrs(path, rel);
  return 0;
}

/* The listing of `dir` (all of it when paths is NULL, else its n relative paths) into a malloc'd
   buffer (*out, *size; free it, even on failure); 0 or an errno. */
static int list_xattrs(const char *dir, char **paths, size_t n, char **out, size_t *size) {
  *out = NULL;
  *size = 0;
  xattr_out = open_memstream(out, size);
  if (!xattr_out) return errno;
  int err = 0;
  if (!paths) {
    xattr_root = dir;
    if (nftw(dir, xattr_cb, 64, FTW_PHYS) < 0) err = errno;
  } else {
    char *path = malloc(strlen(dir) + PATH_MAX + 2);
    for (size_t i = 0; i < n; i++) {
      if (strlen(paths[i]) > PATH_MAX) continue;
      sprintf(path, "%s/%s", dir, paths[i]);
      emit_xattrs(path, paths[i]);
    }
    free(path);
  }
  fclose(xattr_out);
  xattr_out = NULL;
  return err;
}
#endif
