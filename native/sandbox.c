/*
 * tsbuild-sandbox: the mechanism under tsbuild's runtime. It decides nothing: TypeScript builds a JSON
 * spec (shaped on the OCI runtime spec) and this program carries it out.
 *
 *   tsbuild-sandbox run            spec on fd 3; errors as one JSON line on fd 4
 *   tsbuild-sandbox exec           the same, for a new process in a running container (setns)
 *   tsbuild-sandbox mount T S D F DATA   mount(2) S of type T on D with flags F and data DATA
 *   tsbuild-sandbox umount PATH    umount2(PATH, MNT_DETACH)
 *   tsbuild-sandbox apply-meta     mknod / lsetxattr records from stdin
 *   tsbuild-sandbox serve          mount / umount / xattrs requests on stdin, one JSON answer line each
 *                                  (xattrs: every xattr under DIR, or of the paths named, as relpath\0name\0hexvalue\0)
 *   tsbuild-sandbox userns         hold a new user + mount namespace (rootless); maps written by tsbuild
 *   tsbuild-sandbox join PID PROG ARGS...  enter PID's user and mount namespaces as root, exec PROG
 *   tsbuild-sandbox netns          hold a new network namespace (for slirp4netns) until killed
 *
 * A spec with a "user" namespace (--userns, --uidmap as root) gets its maps from linux.uidMappings and
 * linux.gidMappings and sees the paths in linux.idmapPaths (the image's layers, tsbuild's volumes)
 * through that map, so files root owns on the host are root's in the container. linux.binfmt lists
 * binfmt_misc handlers (qemu-user, for another platform's programs) registered in that namespace alone.
 *
 * `run` clones into the namespaces named by the spec, mounts the root filesystem and the spec's mounts
 * inside the new mount namespace (so they vanish with it), pivots, drops privileges and execs. The
 * parent stays to forward signals and report the exit status; the child dies with it (PDEATHSIG).
 */
#define _GNU_SOURCE
#include "json.h"
#include "xattrs.h"
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/bpf.h>
#include <linux/filter.h>
#include <linux/mount.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <net/if.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <termios.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
struct tsb_open_how { uint64_t flags, mode, resolve; };
#define TSB_RESOLVE_IN_ROOT 0x10

static struct jval *spec;
static int errfd = 4;
static pid_t child_pid = -1;
static int pty_master = -1;
/* With a terminal, the child opens the pty inside the container's own devpts and passes the master here. */
static int tty_sock[2] = {-1, -1};

static void json_escape(FILE *f, const char *s) {
  fputc('"', f);
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c < 0x20) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
  }
  fputc('"', f);
}

/* Every failure is reported as {stage, op, path, errno} and the process exits 127. */
static void fail(const char *stage, const char *op, const char *path, int err) {
  FILE *f = fdopen(dup(errfd), "w");
  if (f) {
    fprintf(f, "{\"stage\":");
    json_escape(f, stage);
    fprintf(f, ",\"op\":");
    json_escape(f, op);
    fprintf(f, ",\"path\":");
    json_escape(f, path ? path : "");
    fprintf(f, ",\"errno\":%d,\"message\":", err);
    json_escape(f, err ? strerror(err) : "");
    fprintf(f, "}\n");
    fclose(f);
  }
  _exit(127);
}

static char *read_all(int fd) {
  size_t cap = 65536, len = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (len + 1 >= cap) { cap *= 2; buf = realloc(buf, cap); if (!buf) return NULL; }
    ssize_t n = read(fd, buf + len, cap - len - 1);
    if (n < 0) { if (errno == EINTR) continue; return NULL; }
    if (n == 0) break;
    len += (size_t)n;
  }
  buf[len] = 0;
  return buf;
}

static char **strv(struct jval *arr) {
  size_t n = arr && arr->type == J_ARR ? arr->len : 0;
  char **v = calloc(n + 1, sizeof *v);
  for (size_t i = 0; i < n; i++) v[i] = arr->items[i]->type == J_STR ? arr->items[i]->str : "";
  return v;
}

static int open_in_root_at(int rootfd, const char *dest, int as_file, int depth);

/* Opens (creating as needed) `dest` under rootfd, resolving every symlink inside the root. */
static int open_in_root(int rootfd, const char *dest, int as_file) {
  return open_in_root_at(rootfd, dest, as_file, 0);
}

/*
 * `p` (a prefix of the destination, relative to the root) names a symlink whose target is missing: the
 * path continues at the link's target, itself resolved inside the root (as runc's securejoin does).
 */
static int follow_dangling(int rootfd, char *p, const char *rest, int as_file, int depth) {
  char link[4096], next[16384];
  ssize_t n = readlinkat(rootfd, p, link, sizeof link - 1);
  if (n < 0) return -1;
  link[n] = 0;
  char *slash = strrchr(p, '/');
  if (link[0] == '/' || !slash) snprintf(next, sizeof next, "%s%s%s", link[0] == '/' ? "" : "/", link, rest);
  else {
    *slash = 0;
    snprintf(next, sizeof next, "/%s/%s%s", p, link, rest);
    *slash = '/';
  }
  return open_in_root_at(rootfd, next, as_file, depth + 1);
}

static int open_in_root_at(int rootfd, const char *dest, int as_file, int depth) {
  if (depth > 40) { errno = ELOOP; return -1; }
  char buf[4096];
  if (strlen(dest) >= sizeof buf) { errno = ENAMETOOLONG; return -1; }
  snprintf(buf, sizeof buf, "%s", dest);
  char *p = buf;
  while (*p == '/') p++;
  for (char *s = p;; s++) {
    int last = (*s == 0);
    if (*s == '/' || last) {
      char save = *s;
      *s = 0;
      if (*p) {
        struct tsb_open_how how = { O_PATH | O_CLOEXEC, 0, TSB_RESOLVE_IN_ROOT };
        int fd = (int)syscall(SYS_openat2, rootfd, p, &how, sizeof how);
        if (fd < 0 && errno == ENOENT) {
          /* Create the missing component inside its (already resolved) parent. */
          char *slash = strrchr(p, '/');
          int parent = rootfd;
          const char *name = p;
          if (slash) {
            *slash = 0;
            struct tsb_open_how ph = { O_PATH | O_DIRECTORY | O_CLOEXEC, 0, TSB_RESOLVE_IN_ROOT };
            parent = (int)syscall(SYS_openat2, rootfd, p, &ph, sizeof ph);
            *slash = '/';
            name = slash + 1;
            if (parent < 0) return -1;
          }
          int r;
          if (last && as_file) {
            r = openat(parent, name, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
            if (r >= 0) close(r);
          } else {
            r = mkdirat(parent, name, 0755);
          }
          if (parent != rootfd) close(parent);
          if (r < 0 && errno != EEXIST) return -1;
          fd = (int)syscall(SYS_openat2, rootfd, p, &how, sizeof how);
          if (fd < 0 && errno == ENOENT && r < 0) {
            /* It exists yet does not resolve: a symlink to a missing path inside the root. */
            char rest[4096];
            snprintf(rest, sizeof rest, "%s%s", last ? "" : "/", last ? "" : s + 1);
            return follow_dangling(rootfd, p, rest, as_file, depth);
          }
        }
        if (fd < 0) return -1;
        if (last) return fd;
        close(fd);
      }
      *s = save;
      if (last) break;
    }
  }
  return dup(rootfd);
}

/* Makes the mount that holds `path` private: the longest mount point in mountinfo that contains it. */
static void parent_mount_private(const char *path) {
  char real[4096], best[4096] = "/", line[8192];
  if (!realpath(path, real)) fail("rootfs", "realpath", path, errno);
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (!f) fail("rootfs", "mountinfo", path, errno);
  while (fgets(line, sizeof line, f)) {
    char mp[4096];
    /* Fields: id parent major:minor root mountpoint ...; mount points escape spaces as \040. */
    if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1) continue;
    size_t n = strlen(mp);
    int inside = !strcmp(mp, "/") || (!strncmp(real, mp, n) && (real[n] == '/' || real[n] == 0));
    if (inside && strcmp(mp, real) && n > strlen(best)) snprintf(best, sizeof best, "%s", mp);
  }
  fclose(f);
  if (mount(NULL, best, NULL, MS_PRIVATE, NULL) < 0) fail("rootfs", "parent-private", best, errno);
}

/* A bind remount must keep the flags the mount already has: in a user namespace the kernel locks them
   (EPERM otherwise), and keeping a host mount's nosuid or noexec is right for root too (as runc). */
static unsigned long kept_flags(const char *target) {
  struct statvfs sv;
  if (statvfs(target, &sv) < 0) return 0;
  unsigned long f = 0;
  if (sv.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) f |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (sv.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (sv.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (sv.f_flag & ST_RELATIME) f |= MS_RELATIME;
  return f;
}

/* With a user namespace of its own, the container's root may not search the directories that hold the
   root and the bind sources (a 0700 store): they are opened first (open_sources), and mounted through the fds. */
static int *bind_src_fds;

static void do_mounts(int rootfd) {
  struct jval *mounts = json_get(spec, "mounts");
  for (size_t i = 0; mounts && i < mounts->len; i++) {
    struct jval *m = mounts->items[i];
    const char *dest = json_str(m, "destination", "");
    const char *type = json_str(m, "type", "");
    const char *src = json_str(m, "source", "");
    const char *data = json_str(m, "data", NULL);
    unsigned long flags = (unsigned long)json_int(m, "flags", 0);
    int as_file = json_bool(m, "file", 0);
    int fd = open_in_root(rootfd, dest, as_file);
    if (fd < 0) fail("mounts", "mkdir", dest, errno);
    char target[64];
    snprintf(target, sizeof target, "/proc/self/fd/%d", fd);
    /* A read-only bind needs a second, per-mount-point remount; other types take MS_RDONLY at mount time
       (remounting a filesystem like sysfs that shares the host's superblock would change the host's). */
    unsigned long first = (flags & MS_BIND) ? (flags & ~(unsigned long)MS_RDONLY) : flags;
    char srcfd[64];
    if (bind_src_fds && bind_src_fds[i] >= 0) {
      snprintf(srcfd, sizeof srcfd, "/proc/self/fd/%d", bind_src_fds[i]);
      src = srcfd;
    }
    if (mount(src, target, type, first, data) < 0) fail("mounts", "mount", dest, errno);
    close(fd);
    if ((flags & MS_BIND) && (flags & MS_RDONLY)) {
      fd = open_in_root(rootfd, dest, as_file);
      snprintf(target, sizeof target, "/proc/self/fd/%d", fd);
      unsigned long rf = MS_REMOUNT | MS_BIND | MS_RDONLY | (flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC)) | (fd < 0 ? 0 : kept_flags(target));
      if (fd < 0 || mount(NULL, target, NULL, rf, NULL) < 0) fail("mounts", "remount-ro", dest, errno);
      close(fd);
    }
    unsigned long prop = (unsigned long)json_int(m, "propagation", 0);
    if (prop) {
      fd = open_in_root(rootfd, dest, as_file);
      snprintf(target, sizeof target, "/proc/self/fd/%d", fd);
      if (fd < 0 || mount(NULL, target, NULL, prop, NULL) < 0) fail("mounts", "propagation", dest, errno);
      close(fd);
    }
  }
  struct jval *links = json_get(spec, "symlinks");
  for (size_t i = 0; links && i < links->len; i++) {
    const char *target = json_str(links->items[i], "target", "");
    const char *path = json_str(links->items[i], "path", "");
    /* The paths are fixed ones under /dev, a tmpfs of ours: nothing of the image's is followed. */
    unlinkat(rootfd, path, 0);
    if (symlinkat(target, rootfd, path) < 0 && errno != EEXIST) fail("mounts", "symlink", path, errno);
  }
}

/* linux.binfmt: handlers (binfmt_misc "register" lines) that exist for this container alone. binfmt_misc
   has an instance per user namespace (Linux 6.7): mounted inside the container's own namespace, the
   registrations live as long as that mount and reach no other process. The interpreter (flag F) is
   opened now, from the host's tree, so the image need not hold it. Refused in the host's namespace,
   where it would register for the whole machine. */
static void register_binfmt(int rootfd) {
  struct jval *lines = json_get(json_get(spec, "linux"), "binfmt");
  if (!lines || lines->len == 0) return;
  /* The host's /proc is still the one mounted here: its pid 1 is in the initial user namespace. */
  struct stat self, init;
  if (stat("/proc/self/ns/user", &self) < 0) fail("binfmt", "stat", "/proc/self/ns/user", errno);
  if (stat("/proc/1/ns/user", &init) == 0 && init.st_ino == self.st_ino && init.st_dev == self.st_dev)
    fail("binfmt", "userns", "the host's user namespace", EPERM);
  int dir = open_in_root(rootfd, "/proc/sys/fs/binfmt_misc", 0);
  if (dir < 0) fail("binfmt", "open", "/proc/sys/fs/binfmt_misc", errno);
  char target[64];
  snprintf(target, sizeof target, "/proc/self/fd/%d", dir);
  if (mount("binfmt_misc", target, "binfmt_misc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) fail("binfmt", "mount", "/proc/sys/fs/binfmt_misc", errno);
  close(dir);
  if ((dir = open_in_root(rootfd, "/proc/sys/fs/binfmt_misc", 0)) < 0) fail("binfmt", "open", "/proc/sys/fs/binfmt_misc", errno);
  for (size_t i = 0; i < lines->len; i++) {
    const char *line = lines->items[i]->str;
    if (!line) continue;
    int reg = openat(dir, "register", O_WRONLY | O_CLOEXEC);
    if (reg < 0) fail("binfmt", "open", "register", errno);
    /* EEXIST: a container sharing this namespace (rootless) registered the same handler. */
    if (write(reg, line, strlen(line)) < 0 && errno != EEXIST) fail("binfmt", "register", line, errno);
    close(reg);
  }
  snprintf(target, sizeof target, "/proc/self/fd/%d", dir);
  if (mount(NULL, target, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) fail("binfmt", "remount-ro", "/proc/sys/fs/binfmt_misc", errno);
  close(dir);
}

static void mask_paths(void) {
  struct jval *linux_ = json_get(spec, "linux");
  struct jval *masked = json_get(linux_, "maskedPaths");
  for (size_t i = 0; masked && i < masked->len; i++) {
    const char *p = masked->items[i]->str;
    struct stat st;
    if (!p || lstat(p, &st) < 0) continue;
    if (S_ISDIR(st.st_mode)) {
      if (mount("tmpfs", p, "tmpfs", MS_RDONLY, "size=0") < 0) fail("mask", "mount", p, errno);
    } else if (mount("/dev/null", p, NULL, MS_BIND, NULL) < 0) {
      fail("mask", "bind", p, errno);
    }
  }
  struct jval *ro = json_get(linux_, "readonlyPaths");
  for (size_t i = 0; ro && i < ro->len; i++) {
    const char *p = ro->items[i]->str;
    if (!p || access(p, F_OK) < 0) continue;
    if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0) fail("readonly", "bind", p, errno);
    if (mount(NULL, p, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | kept_flags(p), NULL) < 0)
      fail("readonly", "remount", p, errno);
  }
}

static const char *envget(char **env, const char *key) {
  size_t k = strlen(key);
  for (; env && *env; env++) if (!strncmp(*env, key, k) && (*env)[k] == '=') return *env + k + 1;
  return NULL;
}

/* execvpe with the container's PATH, not the helper's. */
static void exec_in_container(char **argv, char **env) {
  if (!argv[0] || !argv[0][0]) fail("exec", "exec", "", ENOENT);
  if (strchr(argv[0], '/')) { execve(argv[0], argv, env); fail("exec", "exec", argv[0], errno); }
  const char *path = envget(env, "PATH");
  if (!path) path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  char *dirs = strdup(path);
  int saved = ENOENT;
  for (char *d = strtok(dirs, ":"); d; d = strtok(NULL, ":")) {
    char full[4096];
    snprintf(full, sizeof full, "%s/%s", *d ? d : ".", argv[0]);
    execve(full, argv, env);
    if (errno != ENOENT && errno != ENOTDIR) saved = errno;
  }
  fail("exec", "lookup", argv[0], saved);
}

/* capabilities: { bounding: [n...], effective: [n...] } (effective also becomes permitted and inheritable). */
static uint64_t capmask(struct jval *arr) {
  uint64_t m = 0;
  for (size_t i = 0; arr && arr->type == J_ARR && i < arr->len; i++) m |= 1ULL << ((int)arr->items[i]->num & 63);
  return m;
}
/* The bounding set must shrink while we still hold CAP_SETPCAP, i.e. before setuid. */
static void drop_bounding(struct jval *process) {
  struct jval *caps = json_get(process, "capabilities");
  if (!caps) return;
  uint64_t bounding = capmask(json_get(caps, "bounding"));
  for (int c = 0; c <= 63; c++) {
    if (bounding & (1ULL << c)) continue;
    if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL) fail("caps", "bset-drop", "", errno);
  }
}
static void apply_caps(struct jval *process) {
  struct jval *caps = json_get(process, "capabilities");
  if (!caps) return;
  uint64_t eff = capmask(json_get(caps, "effective"));
  struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct d[2];
  memset(d, 0, sizeof d);
  /* A process cannot grant what it does not hold (root here may lack CAP_SYS_RESOURCE): keep the
     requested set within the current permitted set. */
  if (syscall(SYS_capget, &h, d) == 0) eff &= ((uint64_t)d[1].permitted << 32) | d[0].permitted;
  memset(d, 0, sizeof d);
  d[0].effective = d[0].permitted = d[0].inheritable = (uint32_t)eff;
  d[1].effective = d[1].permitted = d[1].inheritable = (uint32_t)(eff >> 32);
  if (syscall(SYS_capset, &h, d) < 0) fail("caps", "capset", "", errno);
}

/* linux.seccomp: classic BPF as [[code, jt, jf, k], ...], compiled from the profile in TypeScript. */
static void install_seccomp(void) {
  struct jval *prog = json_get(json_get(spec, "linux"), "seccomp");
  if (!prog || prog->type != J_ARR || prog->len == 0) return;
  if (prog->len > 4096) fail("seccomp", "spec", "too many instructions", EINVAL);
  struct sock_filter *f = calloc(prog->len, sizeof *f);
  if (!f) fail("seccomp", "alloc", "", ENOMEM);
  for (size_t i = 0; i < prog->len; i++) {
    struct jval *x = prog->items[i];
    if (!x || x->type != J_ARR || x->len != 4) fail("seccomp", "spec", "instruction", EINVAL);
    f[i].code = (unsigned short)x->items[0]->num;
    f[i].jt = (unsigned char)x->items[1]->num;
    f[i].jf = (unsigned char)x->items[2]->num;
    f[i].k = (uint32_t)x->items[3]->num;
  }
  struct sock_fprog fp = { (unsigned short)prog->len, f };
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp) < 0) fail("seccomp", "install", "", errno);
  free(f);
}

/* A cgroup v2 device filter: eBPF as [[opcode, dst, src, off, imm], ...], compiled in TypeScript,
   loaded and attached to the cgroup directory `dir` (cgroup v2 has no devices controller). */
static void attach_devices(const char *dir, struct jval *prog) {
  if (!dir || !prog || prog->type != J_ARR || prog->len == 0 || prog->len > 4096) fail("devices", "spec", dir ? dir : "", EINVAL);
  struct bpf_insn *insns = calloc(prog->len, sizeof *insns);
  if (!insns) fail("devices", "alloc", dir, ENOMEM);
  for (size_t i = 0; i < prog->len; i++) {
    struct jval *x = prog->items[i];
    if (!x || x->type != J_ARR || x->len != 5) fail("devices", "spec", "instruction", EINVAL);
    insns[i].code = (unsigned char)x->items[0]->num;
    insns[i].dst_reg = (unsigned char)x->items[1]->num & 0xf;
    insns[i].src_reg = (unsigned char)x->items[2]->num & 0xf;
    insns[i].off = (short)x->items[3]->num;
    insns[i].imm = (int)(long long)x->items[4]->num;
  }
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  a.insns = (uint64_t)(uintptr_t)insns;
  a.insn_cnt = (uint32_t)prog->len;
  a.license = (uint64_t)(uintptr_t)"Apache-2.0";
  int pfd = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof a);
  if (pfd < 0) fail("devices", "bpf-load", dir, errno);
  int cfd = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (cfd < 0) fail("devices", "open-cgroup", dir, errno);
  memset(&a, 0, sizeof a);
  a.target_fd = (uint32_t)cfd;
  a.attach_bpf_fd = (uint32_t)pfd;
  a.attach_type = BPF_CGROUP_DEVICE;
  a.attach_flags = BPF_F_ALLOW_MULTI;
  if (syscall(SYS_bpf, BPF_PROG_ATTACH, &a, sizeof a) < 0) fail("devices", "bpf-attach", dir, errno);
  close(cfd);
  close(pfd);
  free(insns);
}

/* linux.cgroupJoin: the files to join the container's cgroup through (a v1 hierarchy's tasks, a v2
   cgroup's cgroup.procs), before anything else runs in the container; "0" means the writer. */
static void join_cgroups(void) {
  struct jval *files = json_get(json_get(spec, "linux"), "cgroupJoin");
  for (size_t i = 0; files && i < files->len; i++) {
    const char *p = files->items[i]->str;
    int fd = p ? open(p, O_WRONLY | O_CLOEXEC) : -1;
    if (fd < 0 || write(fd, "0", 1) != 1) fail("cgroup", "join", p ? p : "", errno);
    close(fd);
  }
}

static int rlimit_resource(const char *name) {
  static const struct { const char *n; int r; } t[] = {
    {"RLIMIT_NOFILE", RLIMIT_NOFILE}, {"RLIMIT_NPROC", RLIMIT_NPROC}, {"RLIMIT_CORE", RLIMIT_CORE},
    {"RLIMIT_STACK", RLIMIT_STACK}, {"RLIMIT_AS", RLIMIT_AS}, {"RLIMIT_CPU", RLIMIT_CPU},
    {"RLIMIT_FSIZE", RLIMIT_FSIZE}, {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS}, {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_RSS", RLIMIT_RSS}, {"RLIMIT_RTPRIO", RLIMIT_RTPRIO}, {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) if (!strcmp(t[i].n, name)) return t[i].r;
  return -1;
}

static volatile sig_atomic_t got_sig;
static void reap_forward(int sig) { got_sig = sig; if (child_pid > 0) kill(child_pid, sig); }

/* PID 1 when --init is asked for: run the process as a child, reap every zombie, pass signals on. */
static int init_main(char **argv, char **env) {
  pid_t pid = fork();
  if (pid < 0) fail("init", "fork", "", errno);
  if (pid == 0) {
    sigset_t none; sigemptyset(&none); sigprocmask(SIG_SETMASK, &none, NULL);
    exec_in_container(argv, env);
  }
  child_pid = pid;
  struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = reap_forward;
  int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);
  close(errfd);
  for (;;) {
    int st;
    pid_t w = wait(&st);
    if (w < 0) { if (errno == EINTR) continue; return 1; }
    if (w == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
}

/* The tail shared by `run` and `exec`: rlimits, the terminal, privileges, seccomp, working directory,
   exec. Runs in the container's namespaces, as root with every capability until it drops them. */
static int groups_denied(void) {
  char buf[16] = {0};
  int fd = open("/proc/self/setgroups", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  return n > 0 && !strncmp(buf, "deny", 4);
}

static void finish_process(struct jval *process, int with_init) {
  struct jval *rl = json_get(process, "rlimits");
  for (size_t i = 0; rl && i < rl->len; i++) {
    int res = rlimit_resource(json_str(rl->items[i], "type", ""));
    if (res < 0) fail("rlimit", "type", json_str(rl->items[i], "type", ""), EINVAL);
    long long soft = json_int(rl->items[i], "soft", -1), hard = json_int(rl->items[i], "hard", -1);
    struct rlimit r = { soft < 0 ? RLIM_INFINITY : (rlim_t)soft, hard < 0 ? RLIM_INFINITY : (rlim_t)hard };
    if (setrlimit(res, &r) < 0) fail("rlimit", "setrlimit", json_str(rl->items[i], "type", ""), errno);
  }

  if (tty_sock[1] >= 0) {
    int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0 || unlockpt(master) < 0) fail("tty", "open-ptmx", "/dev/ptmx", errno);
    char *name = ptsname(master);
    int slave = name ? open(name, O_RDWR | O_NOCTTY) : -1;
    if (slave < 0) fail("tty", "open-slave", name ? name : "", errno);
    char dummy = 0;
    struct iovec iov = { &dummy, 1 };
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof cbuf);
    struct msghdr msg = { 0 };
    msg.msg_iov = &iov; msg.msg_iovlen = 1; msg.msg_control = cbuf; msg.msg_controllen = sizeof cbuf;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET; cm->cmsg_type = SCM_RIGHTS; cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &master, sizeof(int));
    if (sendmsg(tty_sock[1], &msg, 0) < 0) fail("tty", "send-master", "", errno);
    close(master);
    close(tty_sock[1]);
    if (setsid() < 0) fail("tty", "setsid", "", errno);
    if (ioctl(slave, TIOCSCTTY, 0) < 0) fail("tty", "TIOCSCTTY", "", errno);
    dup2(slave, 0); dup2(slave, 1); dup2(slave, 2);
    if (slave > 2) close(slave);
  }

  struct jval *user = json_get(process, "user");
  gid_t gid = (gid_t)json_int(user, "gid", 0);
  uid_t uid = (uid_t)json_int(user, "uid", 0);
  struct jval *extra = json_get(user, "additionalGids");
  gid_t groups[64]; size_t ng = 0;
  for (size_t i = 0; extra && i < extra->len && ng < 64; i++) groups[ng++] = (gid_t)extra->items[i]->num;
  /* A seccomp filter needs no_new_privs or CAP_SYS_ADMIN: without no_new_privs it goes in while we are
     still root with every capability, so the profile must allow what follows (as with runc). */
  int nnp = json_bool(process, "noNewPrivileges", 0);
  if (!nnp) install_seccomp();
  drop_bounding(process);
  /* A user namespace with a single-id map has setgroups denied: nothing can be dropped or added there,
     which is only an error when groups were asked for. */
  if (setgroups(ng, groups) < 0 && !(errno == EPERM && (ng == 0 || (ng == 1 && groups[0] == gid)) && groups_denied())) fail("user", "setgroups", "", errno);
  if (setgid(gid) < 0) fail("user", "setgid", "", errno);
  if (setuid(uid) < 0) fail("user", "setuid", "", errno);
  apply_caps(process);
  if (nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) fail("user", "no_new_privs", "", errno);
  if (nnp) install_seccomp();

  const char *cwd = json_str(process, "cwd", "/");
  if (chdir(cwd) < 0) fail("exec", "chdir", cwd, errno);

  char **argv = strv(json_get(process, "args"));
  char **env = strv(json_get(process, "env"));
  sigset_t none; sigemptyset(&none); sigprocmask(SIG_SETMASK, &none, NULL);
  if (with_init) _exit(init_main(argv, env));
  exec_in_container(argv, env);
}

static void loopback_up(void) {
  int sk = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  if (sk < 0 || ioctl(sk, SIOCGIFFLAGS, &ifr) < 0) fail("network", "lo-flags", "lo", errno);
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(sk, SIOCSIFFLAGS, &ifr) < 0) fail("network", "lo-up", "lo", errno);
  close(sk);
}

static void mount_root(struct jval *root, const char *rootpath) {
  struct jval *rmounts = json_get(root, "mounts");
  for (size_t i = 0; rmounts && i < rmounts->len; i++) {
    struct jval *m = rmounts->items[i];
    const char *mcwd = json_str(m, "cwd", NULL);
    if (mcwd && chdir(mcwd) < 0) fail("rootfs", "chdir", mcwd, errno);
    if (mount(json_str(m, "source", "none"), rootpath, json_str(m, "type", ""), (unsigned long)json_int(m, "flags", 0), json_str(m, "data", NULL)) < 0)
      fail("rootfs", "mount", rootpath, errno);
  }
  /* pivot_root needs the new root to be a mount point. */
  if (!rmounts || rmounts->len == 0) {
    if (mount(rootpath, rootpath, NULL, MS_BIND | MS_REC, NULL) < 0) fail("rootfs", "bind", rootpath, errno);
  }
}

static int own_userns;
static int root_fd = -1;

/* Opened while we still carry the host's uid 0 (its owner), before becoming the container's root. */
static void open_sources(const char *rootpath) {
  if ((root_fd = open(rootpath, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) fail("rootfs", "open", rootpath, errno);
  struct jval *mounts = json_get(spec, "mounts");
  bind_src_fds = calloc(mounts ? mounts->len + 1 : 1, sizeof(int));
  for (size_t i = 0; mounts && i < mounts->len; i++) {
    struct jval *m = mounts->items[i];
    bind_src_fds[i] = -1;
    if (!((unsigned long)json_int(m, "flags", 0) & MS_BIND)) continue;
    const char *src = json_str(m, "source", "");
    if ((bind_src_fds[i] = open(src, O_PATH | O_CLOEXEC)) < 0) fail("mounts", "open-source", src, errno);
  }
}

static int hold_fd = -1, hold_wr = -1;
static int hold_main(void *arg) {
  (void)arg;
  char c;
  close(hold_wr);
  while (read(hold_fd, &c, 1) < 0 && errno == EINTR) {}
  _exit(0);
}

static void write_map(pid_t pid, const char *file, struct jval *maps) {
  char buf[4096], p[64];
  size_t n = 0;
  for (size_t i = 0; maps && i < maps->len && n < sizeof buf - 64; i++) {
    struct jval *m = maps->items[i];
    n += (size_t)snprintf(buf + n, sizeof buf - n, "%lld %lld %lld\n", json_int(m, "containerID", -1), json_int(m, "hostID", -1), json_int(m, "size", 0));
  }
  snprintf(p, sizeof p, "/proc/%d/%s", (int)pid, file);
  int fd = open(p, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, buf, n) != (ssize_t)n) fail("userns", "map", file, errno);
  close(fd);
}

/* The container's own user namespace, for root: a throwaway child makes it and we write its maps (host
   root may write any map). In a private mount namespace of ours, the image's layers are then replaced by
   views through that map (idmapped mounts) and the root filesystem is mounted with the host's privileges
   (overlay reads trusted.* xattrs as the mounter), before we enter the namespace: every namespace the
   clone makes is then owned by it, so the container may mount sysfs, mqueue and set its hostname. */
static void enter_own_userns(const char *rootpath) {
  struct jval *linux_ = json_get(spec, "linux");
  int hold[2];
  if (pipe2(hold, O_CLOEXEC) < 0) fail("userns", "pipe", "", errno);
  hold_fd = hold[0];
  hold_wr = hold[1];
  static char hstack[64 * 1024];
  pid_t holder = clone(hold_main, hstack + sizeof hstack, CLONE_NEWUSER | SIGCHLD, NULL);
  if (holder < 0) fail("userns", "clone", "", errno);
  close(hold[0]);
  write_map(holder, "uid_map", json_get(linux_, "uidMappings"));
  write_map(holder, "gid_map", json_get(linux_, "gidMappings"));
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/ns/user", (int)holder);
  int ufd = open(p, O_RDONLY | O_CLOEXEC);
  if (ufd < 0) fail("userns", "open", p, errno);
  close(hold[1]);
  while (waitpid(holder, NULL, 0) < 0 && errno == EINTR) {}

  /* A slave: nothing mounted here reaches the host, and the host's later mounts still arrive, for the
     container's rslave binds. */
  if (unshare(CLONE_NEWNS) < 0) fail("userns", "unshare-mnt", "", errno);
  if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0) fail("userns", "slave", "/", errno);
  struct mount_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.attr_set = MOUNT_ATTR_IDMAP;
  attr.userns_fd = (uint64_t)ufd;
  struct jval *paths = json_get(linux_, "idmapPaths");
  for (size_t i = 0; paths && i < paths->len; i++) {
    const char *path = paths->items[i]->str;
    if (!path) continue;
    int t = (int)syscall(SYS_open_tree, AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (t < 0) fail("idmap", "open_tree", path, errno);
    if (syscall(SYS_mount_setattr, t, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0) fail("idmap", "mount_setattr", path, errno);
    if (syscall(SYS_move_mount, t, "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH) < 0) fail("idmap", "move_mount", path, errno);
    close(t);
  }
  mount_root(json_get(spec, "root"), rootpath);
  if (setns(ufd, CLONE_NEWUSER) < 0) fail("userns", "setns", "", errno);
  close(ufd);
}

static int child_main(void *arg) {
  (void)arg;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) _exit(1);
  join_cgroups();
  struct jval *process = json_get(spec, "process");
  struct jval *root = json_get(spec, "root");
  const char *rootpath = json_str(root, "path", NULL);
  if (!rootpath) fail("spec", "root.path", "", EINVAL);
  if (own_userns) {
    open_sources(rootpath);
    /* Root of the container's user namespace (the uid we came with is not mapped in it), so that what
       we mount (/dev, /dev/shm) is the container root's. */
    if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) fail("userns", "become-root", "", errno);
  }

  unsigned long prop = (unsigned long)json_int(json_get(spec, "linux"), "rootfsPropagation", MS_REC | MS_PRIVATE);
  if (mount(NULL, "/", NULL, prop, NULL) < 0) fail("rootfs", "propagation", "/", errno);
  /* A shared tree would send the root's mount back to the host: its parent mount goes private (as runc). */
  if (prop & MS_SHARED) parent_mount_private(rootpath);
  int rootfd;
  if (!own_userns) {
    mount_root(root, rootpath);
    if ((rootfd = open(rootpath, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) fail("rootfs", "open", rootpath, errno);
  } else {
    /* The root our parent mounted came into this less privileged namespace locked, and pivot_root
       refuses a locked mount: a copy of it made here, put on top, is not. */
    rootfd = (int)syscall(SYS_open_tree, root_fd, "", AT_EMPTY_PATH | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (rootfd < 0) fail("rootfs", "open_tree", rootpath, errno);
    if (syscall(SYS_move_mount, rootfd, "", root_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) fail("rootfs", "move_mount", rootpath, errno);
  }
  do_mounts(rootfd);
  register_binfmt(rootfd);

  if (json_bool(spec, "loopbackUp", 0)) loopback_up();
  const char *hostname = json_str(spec, "hostname", NULL);
  if (hostname && sethostname(hostname, strlen(hostname)) < 0) fail("uts", "sethostname", hostname, errno);

  int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (oldroot < 0) fail("pivot", "open", "/", errno);
  if (fchdir(rootfd) < 0) fail("pivot", "chdir", rootpath, errno);
  close(rootfd);
  if (syscall(SYS_pivot_root, ".", ".") < 0) fail("pivot", "pivot_root", rootpath, errno);
  /* The old root (entered by its fd: the kernel promises nothing about "." after pivot_root) goes
     rslave first, so unmounting it cannot propagate to the host; the new tree keeps its own (runc). */
  if (fchdir(oldroot) < 0) fail("pivot", "fchdir", "/", errno);
  close(oldroot);
  if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0) fail("pivot", "slave-old", "/", errno);
  if (umount2(".", MNT_DETACH) < 0) fail("pivot", "umount-old", "/", errno);
  if (chdir("/") < 0) fail("pivot", "chdir", "/", errno);
  mask_paths();
  if (json_bool(root, "readonly", 0) && mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | kept_flags("/"), NULL) < 0)
    fail("rootfs", "remount-ro", "/", errno);

  /* Like runc, a missing working directory is created (as root, before privileges drop). */
  if (json_bool(process, "createCwd", 0)) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", json_str(process, "cwd", "/"));
    for (char *p = buf + 1;; p++) {
      if (*p == '/' || *p == 0) {
        char c = *p;
        *p = 0;
        if (mkdir(buf, 0755) < 0 && errno != EEXIST) fail("exec", "mkdir-cwd", buf, errno);
        *p = c;
        if (!c) break;
      }
    }
  }
  finish_process(process, json_bool(spec, "init", 0));
  return 127;
}

static void forward(int sig) { if (child_pid > 0) kill(child_pid, sig); }

static void winsize_sync(void) {
  struct winsize ws;
  if (pty_master >= 0 && ioctl(0, TIOCGWINSZ, &ws) == 0) ioctl(pty_master, TIOCSWINSZ, &ws);
}
static void on_winch(int sig) { (void)sig; winsize_sync(); }

static int ns_flag(const char *t) {
  if (!strcmp(t, "mount")) return CLONE_NEWNS;
  if (!strcmp(t, "pid")) return CLONE_NEWPID;
  if (!strcmp(t, "uts")) return CLONE_NEWUTS;
  if (!strcmp(t, "ipc")) return CLONE_NEWIPC;
  if (!strcmp(t, "network")) return CLONE_NEWNET;
  if (!strcmp(t, "cgroup")) return CLONE_NEWCGROUP;
  if (!strcmp(t, "user")) return CLONE_NEWUSER;
  return -1;
}

static void relay(void) {
  char buf[8192];
  int in_open = 1;
  for (;;) {
    struct pollfd p[2] = { { 0, POLLIN, 0 }, { pty_master, POLLIN, 0 } };
    int n = poll(p, 2, -1);
    if (n < 0) { if (errno == EINTR) continue; return; }
    if (in_open && (p[0].revents & (POLLIN | POLLHUP))) {
      ssize_t r = read(0, buf, sizeof buf);
      if (r <= 0) { in_open = 0; } else if (write(pty_master, buf, (size_t)r) < 0) return;
    }
    if (!in_open) p[0].fd = -1;
    if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = read(pty_master, buf, sizeof buf);
      if (r <= 0) return;
      for (ssize_t off = 0; off < r;) { ssize_t w = write(1, buf + off, (size_t)(r - off)); if (w < 0) { if (errno == EINTR) continue; return; } off += w; }
    }
    if (!in_open) {
      /* Keep copying output until the container closes the terminal. */
      struct pollfd q = { pty_master, POLLIN, 0 };
      if (poll(&q, 1, -1) < 0 && errno != EINTR) return;
      ssize_t r = read(pty_master, buf, sizeof buf);
      if (r <= 0) return;
      if (write(1, buf, (size_t)r) < 0) return;
    }
  }
}

/* The parent's part of `run` and `exec`, once the child exists (signals still blocked in `old`): take
   the pty master, forward signals, report the pid on fd 5, relay the terminal, return the exit status. */
static int supervise(sigset_t *old) {
  if (tty_sock[0] >= 0) {
    close(tty_sock[1]);
    tty_sock[1] = -1;
    char dummy;
    struct iovec iov = { &dummy, 1 };
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct msghdr msg = { 0 };
    msg.msg_iov = &iov; msg.msg_iovlen = 1; msg.msg_control = cbuf; msg.msg_controllen = sizeof cbuf;
    ssize_t n;
    do n = recvmsg(tty_sock[0], &msg, 0); while (n < 0 && errno == EINTR);
    struct cmsghdr *cm = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL;
    if (cm && cm->cmsg_type == SCM_RIGHTS) memcpy(&pty_master, CMSG_DATA(cm), sizeof(int));
    close(tty_sock[0]);
    winsize_sync();
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = forward;
  sa.sa_flags = SA_RESTART;
  int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);
  if (pty_master >= 0) { sa.sa_handler = on_winch; sigaction(SIGWINCH, &sa, NULL); }
  sigprocmask(SIG_SETMASK, old, NULL);
  /* The pid on stdout-less channel: Node learns it from fd 5 if it was given one. */
  if (fcntl(5, F_GETFD) >= 0) { dprintf(5, "%d\n", (int)child_pid); close(5); }
  if (pty_master >= 0) relay();
  int st;
  for (;;) {
    pid_t w = waitpid(child_pid, &st, 0);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return 125;
    break;
  }
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  return 128 + WTERMSIG(st);
}

/* Common start of `run` and `exec`: die with tsbuild (PDEATHSIG), read the spec from fd 3. */
static int read_spec(void) {
  pid_t parent = getppid();
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent) return -1;
  if (fcntl(errfd, F_SETFD, FD_CLOEXEC) < 0) errfd = 2;
  fcntl(5, F_SETFD, FD_CLOEXEC);
  char *text = read_all(3);
  if (!text) fail("spec", "read", "fd 3", errno);
  close(3);
  const char *err = NULL;
  spec = json_parse(text, &err);
  if (!spec) fail("spec", err ? err : "parse", "", EINVAL);
  return 0;
}

static int cmd_run(void) {
  /* If tsbuild dies (even by SIGKILL), so does the helper, and with it the container (its PDEATHSIG). */
  if (read_spec() < 0) return 125;
  struct jval *process = json_get(spec, "process");
  struct jval *devbpf = json_get(json_get(spec, "linux"), "devicesBpf");
  if (devbpf) attach_devices(json_str(devbpf, "cgroup", NULL), json_get(devbpf, "program"));
  int flags = SIGCHLD;
  struct jval *nss = json_get(json_get(spec, "linux"), "namespaces");
  for (size_t i = 0; nss && i < nss->len; i++) {
    int f = ns_flag(json_str(nss->items[i], "type", ""));
    if (f < 0) fail("spec", "namespace", json_str(nss->items[i], "type", ""), EINVAL);
    const char *path = json_str(nss->items[i], "path", NULL);
    if (!path && f == CLONE_NEWUSER) {
      own_userns = 1;
      continue;
    }
    if (!path) {
      flags |= f;
      continue;
    }
    /* A namespace made beforehand (a network set up by tsbuild, another container's): joined here, so
       the clone inherits it. Node cannot setns itself; this single-threaded helper can. */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("namespace", "open", path, errno);
    if (setns(fd, f) < 0) fail("namespace", "setns", path, errno);
    close(fd);
  }
  /* After the joins above: a namespace the host owns can no longer be joined from inside ours. */
  if (own_userns) {
    const char *rootpath = json_str(json_get(spec, "root"), "path", NULL);
    if (!rootpath) fail("spec", "root.path", "", EINVAL);
    enter_own_userns(rootpath);
  }
  if (json_bool(process, "terminal", 0) && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, tty_sock) < 0) fail("tty", "socketpair", "", errno);
  /* Block forwarded signals until the handler knows the child's pid. */
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  size_t stack_size = 1 << 20;
  char *stack = malloc(stack_size);
  child_pid = clone(child_main, stack + stack_size, flags, NULL);
  if (child_pid < 0) fail("clone", "clone", "", errno);
  close(errfd);
  return supervise(&old);
}

static const char *ns_file(const char *t) {
  if (!strcmp(t, "mount")) return "mnt";
  if (!strcmp(t, "network")) return "net";
  return t;
}

/* exec: a new process in a running container. The spec names the container's pid ("pid"), the
   namespaces to join, the cgroup.procs files, and the process as for `run`. Everything is opened
   from the host first (the cgroup files are not visible from inside), then setns, then fork: the
   pid namespace applies to children only. */
static int cmd_exec(void) {
  if (read_spec() < 0) return 125;
  struct jval *process = json_get(spec, "process");
  int target = (int)json_int(spec, "pid", 0);
  if (target <= 0) fail("spec", "pid", "", EINVAL);
  struct jval *nss = json_get(json_get(spec, "linux"), "namespaces");
  int nsfd[8]; size_t nns = 0;
  for (size_t i = 0; nss && i < nss->len && nns < 8; i++) {
    const char *t = json_str(nss->items[i], "type", "");
    if (ns_flag(t) < 0) fail("spec", "namespace", t, EINVAL);
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/ns/%s", target, ns_file(t));
    if ((nsfd[nns++] = open(p, O_RDONLY | O_CLOEXEC)) < 0) fail("exec", "open-ns", p, errno);
  }
  struct jval *files = json_get(json_get(spec, "linux"), "cgroupJoin");
  int cgfd[16]; size_t ncg = 0;
  for (size_t i = 0; files && i < files->len && ncg < 16; i++) {
    const char *p = files->items[i]->str;
    if ((cgfd[ncg++] = p ? open(p, O_WRONLY | O_CLOEXEC) : -1) < 0) fail("cgroup", "open", p ? p : "", errno);
  }
  /* The user namespace after the others (a network namespace the host owns cannot be joined from
     inside it), the mount namespace last: its root replaces ours, and /proc/<pid> paths must resolve before. */
  for (int pass = 0; pass < 3; pass++)
    for (size_t i = 0; i < nns; i++) {
      const char *t = json_str(nss->items[i], "type", "");
      int order = !strcmp(t, "mount") ? 2 : !strcmp(t, "user") ? 1 : 0;
      if (order != pass) continue;
      if (setns(nsfd[i], 0) < 0) fail("exec", "setns", t, errno);
      close(nsfd[i]);
    }
  if (json_bool(process, "terminal", 0) && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, tty_sock) < 0) fail("tty", "socketpair", "", errno);
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  child_pid = fork();
  if (child_pid < 0) fail("exec", "fork", "", errno);
  if (child_pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    for (size_t i = 0; i < ncg; i++)
      if (write(cgfd[i], "0", 1) != 1) fail("cgroup", "join", "", errno);
    finish_process(process, 0);
    _exit(127);
  }
  for (size_t i = 0; i < ncg; i++) close(cgfd[i]);
  close(errfd);
  return supervise(&old);
}

static int unhex(const char *h, unsigned char *out) {
  size_t n = strlen(h);
  if (n % 2) return -1;
  for (size_t i = 0; i < n / 2; i++) {
    unsigned int b;
    if (sscanf(h + 2 * i, "%2x", &b) != 1) return -1;
    out[i] = (unsigned char)b;
  }
  return (int)(n / 2);
}

/* apply-meta: records on stdin, NUL-separated fields, applied in order:
 *   m PATH MODE MAJOR MINOR   mknod (MODE includes the file type bits)
 *   x PATH NAME HEXVALUE      lsetxattr (never follows a symlink) */
static int cmd_apply_meta(void) {
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  ssize_t n;
  while ((n = read(0, buf + len, cap - len)) > 0) {
    len += n;
    if (len == cap) buf = realloc(buf, cap *= 2);
  }
  if (len == cap) buf = realloc(buf, cap + 1);
  buf[len] = 0; /* a last field without its NUL still ends */
  char *f[5];
  size_t pos = 0;
  while (pos < len) {
    int want = buf[pos] == 'm' ? 5 : 4, k = 0;
    for (; k < want && pos < len; k++) { f[k] = buf + pos; pos += strlen(buf + pos) + 1; }
    if (f[0][0] == 'm' && k == 5) {
      dev_t d = makedev(strtoul(f[3], NULL, 10), strtoul(f[4], NULL, 10));
      if (mknod(f[1], (mode_t)strtoul(f[2], NULL, 10), d) < 0) fail("host", "mknod", f[1], errno);
    } else if (f[0][0] == 'x' && k == 4) {
      unsigned char *v = malloc(strlen(f[3]) / 2 + 1);
      int vl = unhex(f[3], v);
      if (vl < 0) fail("host", "setxattr", f[1], EINVAL);
      if (lsetxattr(f[1], f[2], v, vl, 0) < 0) fail("host", "setxattr", f[1], errno);
      free(v);
    } else fail("host", "apply-meta", f[0], EINVAL);
  }
  return 0;
}

/* serve: host mounts for a long-running caller without a process per call (a spawn from a large
 * Node process costs 10-20 ms). Requests on stdin are NUL-terminated fields, each prefixed with ':'
 * (so an empty value is ":"), ending with an empty field: mount TYPE SRC DEST FLAGS DATA [CWD] |
 * umount PATH | xattrs DIR [- RELPATH...]. Each gets one line on stdout: {"ok":true} or the usual
 * failure object; xattrs answers {"ok":true,"size":N} and then N bytes of its listing. Exits on EOF, and with its parent (PDEATHSIG). */
static void reply(const char *op, const char *path, int err) {
  if (!err) { fputs("{\"ok\":true}\n", stdout); fflush(stdout); return; }
  fprintf(stdout, "{\"stage\":\"host\",\"op\":");
  json_escape(stdout, op);
  fprintf(stdout, ",\"path\":");
  json_escape(stdout, path);
  fprintf(stdout, ",\"errno\":%d,\"message\":", err);
  json_escape(stdout, strerror(err));
  fputs("}\n", stdout);
  fflush(stdout);
}

static int cmd_serve(void) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 0;
  /* Ctrl-C reaches the whole process group; the caller still needs us to unmount while it cleans up. */
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGQUIT, SIG_IGN);
  size_t cap = 1 << 16, len = 0, fcap = 8;
  char *buf = malloc(cap);
  char **f = malloc(fcap * sizeof *f);
  for (;;) {
    /* a request is complete when it ends with two NULs (its last field, then an empty one) */
    size_t k = 0, pos = 0;
    for (;;) {
      size_t start = pos;
      char *z = len > pos ? memchr(buf + pos, 0, len - pos) : NULL;
      if (!z) {
        if (len == cap) buf = realloc(buf, cap *= 2);
        ssize_t n = read(0, buf + len, cap - len);
        if (n <= 0) return 0;
        len += n;
        pos = 0; k = 0;
        continue;
      }
      pos = (size_t)(z - buf) + 1;
      if (z == buf + start) break; /* empty field: end of request */
      if (k == fcap) f = realloc(f, (fcap *= 2) * sizeof *f);
      f[k++] = buf + start + (buf[start] == ':');
    }
    if (k >= 2 && !strcmp(f[0], "xattrs") && (k == 2 || !strcmp(f[2], "-"))) {
      char *out;
      size_t size;
      int err = list_xattrs(f[1], k == 2 ? NULL : f + 3, k > 3 ? k - 3 : 0, &out, &size);
      if (err) reply("walk", f[1], err);
      else {
        printf("{\"ok\":true,\"size\":%zu}\n", size);
        fwrite(out, 1, size, stdout);
        fflush(stdout);
      }
      free(out);
    } else if (k >= 6 && !strcmp(f[0], "mount")) {
      int err = 0;
      if (k == 7 && chdir(f[6]) < 0) err = errno;
      if (!err && mount(f[2], f[3], f[1], strtoul(f[4], NULL, 10), *f[5] ? f[5] : NULL) < 0) err = errno;
      reply("mount", f[3], err);
    } else if (k == 2 && !strcmp(f[0], "umount")) {
      reply("umount", f[1], umount2(f[1], MNT_DETACH) < 0 ? errno : 0);
    } else reply(k ? f[0] : "", "", EINVAL);
    memmove(buf, buf + pos, len - pos);
    len -= pos;
  }
}

/* userns: the rootless namespace holder (podman's pause process). It unshares a user and a mount
   namespace, says "ready" on stdout and waits for a byte on stdin while tsbuild writes the id maps
   (newuidmap, or a single-id map: which maps is policy), then says "ok" and sleeps until killed, so
   every later tsbuild command of this user joins the same namespaces and sees the same mounts. */
static int cmd_userns(void) {
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) fail("userns", "unshare", "", errno);
  if (write(1, "ready\n", 6) != 6) return 1;
  char c;
  if (read(0, &c, 1) != 1) return 1;
  if (setresgid(0, 0, 0) < 0) fail("userns", "setresgid", "", errno);
  if (setresuid(0, 0, 0) < 0) fail("userns", "setresuid", "", errno);
  /* The host's later mounts still arrive; ours never reach the host. */
  if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0) fail("userns", "propagation", "/", errno);
  if (write(1, "ok\n", 3) != 3) return 1;
  int null = open("/dev/null", O_RDWR);
  for (int fd = 0; fd < 3; fd++) dup2(null, fd);
  if (null > 2) close(null);
  setsid();
  for (;;) pause();
}

/* join PID PROG ARGS...: enter the holder's user and mount namespaces, become root there (the
   supplementary groups go when the map allows it), keep the working directory, and exec PROG. */
static int cmd_join(char **argv) {
  /* A failure goes to fd 3 when tsbuild gave one: close-on-exec, so it ends empty once PROG runs. */
  if (fcntl(3, F_SETFD, FD_CLOEXEC) == 0) errfd = 3;
  const char *pid = argv[2];
  char path[64], cwd[PATH_MAX];
  if (!getcwd(cwd, sizeof cwd)) snprintf(cwd, sizeof cwd, "/");
  int fds[2];
  const char *ns[2] = {"user", "mnt"};
  for (int i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "/proc/%s/ns/%s", pid, ns[i]);
    if ((fds[i] = open(path, O_RDONLY | O_CLOEXEC)) < 0) fail("join", "open", path, errno);
  }
  if (setns(fds[0], CLONE_NEWUSER) < 0) fail("join", "setns", "user", errno);
  if (setns(fds[1], CLONE_NEWNS) < 0) fail("join", "setns", "mnt", errno);
  close(fds[0]);
  close(fds[1]);
  if (setresgid(0, 0, 0) < 0) fail("join", "setresgid", "", errno);
  if (setgroups(0, NULL) < 0 && errno != EPERM) fail("join", "setgroups", "", errno);
  if (setresuid(0, 0, 0) < 0) fail("join", "setresuid", "", errno);
  if (chdir(cwd) < 0 && chdir("/") < 0) fail("join", "chdir", cwd, errno);
  /* Set after the credentials change, which clears it: the command dies with the tsbuild that ran it. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  execv(argv[3], argv + 3);
  fail("join", "exec", argv[3], errno);
  return 127;
}

/* netns: hold a new network namespace (loopback up) for a container to join and a user-mode stack
   (slirp4netns) to serve; "ready" on stdout, then sleep until killed or until tsbuild dies. */
static int cmd_netns(void) {
  pid_t parent = getppid();
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent) return 1;
  if (unshare(CLONE_NEWNET) < 0) fail("netns", "unshare", "", errno);
  loopback_up();
  if (write(1, "ready\n", 6) != 6) return 1;
  for (;;) pause();
}

int main(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "run")) return cmd_run();
  if (argc >= 2 && !strcmp(argv[1], "exec")) return cmd_exec();
  errfd = 2;
  if ((argc == 7 || argc == 8) && !strcmp(argv[1], "mount")) {
    if (argc == 8 && chdir(argv[7]) < 0) fail("host", "chdir", argv[7], errno);
    unsigned long f = strtoul(argv[5], NULL, 10);
    if (mount(argv[3], argv[4], argv[2], f, *argv[6] ? argv[6] : NULL) < 0) fail("host", "mount", argv[4], errno);
    return 0;
  }
  if (argc == 3 && !strcmp(argv[1], "umount")) {
    if (umount2(argv[2], MNT_DETACH) < 0) fail("host", "umount", argv[2], errno);
    return 0;
  }
  if (argc == 2 && !strcmp(argv[1], "apply-meta")) return cmd_apply_meta();
  if (argc == 2 && !strcmp(argv[1], "serve")) return cmd_serve();
  if (argc == 2 && !strcmp(argv[1], "userns")) return cmd_userns();
  if (argc == 2 && !strcmp(argv[1], "netns")) return cmd_netns();
  if (argc >= 4 && !strcmp(argv[1], "join")) return cmd_join(argv);
  if (argc == 3 && !strcmp(argv[1], "devices-attach")) {
    /* The program as JSON on stdin: the same mechanism `run` uses, for cgroups made outside a run. */
    char *text = read_all(0);
    const char *err = NULL;
    struct jval *prog = text ? json_parse(text, &err) : NULL;
    if (!prog) fail("devices", err ? err : "read", "stdin", EINVAL);
    attach_devices(argv[2], prog);
    return 0;
  }
  fprintf(stderr, "usage: tsbuild-sandbox run | exec | mount TYPE SRC DEST FLAGS DATA [CWD] | umount PATH | apply-meta | serve | devices-attach CGROUP_DIR | userns | join PID PROG ARGS... | netns\n");
  return 2;
}
