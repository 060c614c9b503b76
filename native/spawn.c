/*
 * tsbuild-spawn.node: process creation without fork, for Node.
 *
 * Node's child_process forks: the kernel copies the page tables of the whole Node process and
 * write-protects its memory, the event loop blocks until the child has exec'd (6-12 ms on a VM
 * where a page fault costs 10 us), and every page Node writes afterwards faults once more.
 * posix_spawn (glibc: clone with CLONE_VM|CLONE_VFORK) shares the memory until exec: about 1 ms.
 *
 * Mechanism only, no policy: spawn a file with argv, envp and a descriptor map; make a socket pair;
 * watch a pid's exit on the event loop through a pidfd. What to run and with which descriptors is
 * decided in TypeScript (src/runtime/spawn.ts).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "napierr.h"

#define MAX_FDS 16


/* A JS string as a malloc'd C string; NULL when it is not a string or holds a NUL byte. */
static char *cstring(napi_env env, napi_value v) {
  size_t n;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &n) != napi_ok) return NULL;
  char *s = malloc(n + 1);
  if (!s) return NULL;
  napi_get_value_string_utf8(env, v, s, n + 1, &n);
  if (strlen(s) != n) {
    free(s);
    return NULL;
  }
  return s;
}

static void free_strings(char **list) {
  if (!list) return;
  for (char **p = list; *p; p++) free(*p);
  free(list);
}

/* A JS array of strings as a NULL-terminated list; NULL when an element is not a plain string. */
static char **cstrings(napi_env env, napi_value arr) {
  uint32_t n;
  if (napi_get_array_length(env, arr, &n) != napi_ok) return NULL;
  char **out = calloc(n + 1, sizeof(char *));
  if (!out) return NULL;
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    napi_get_element(env, arr, i, &e);
    if (!(out[i] = cstring(env, e))) {
      free_strings(out);
      return NULL;
    }
  }
  return out;
}

/*
 * Adds a signal to a set by its bit: glibc's sigaddset and sigfillset leave out its internal signals
 * (32, 33), and its posix_spawn then sets those to SIG_IGN in the child, which exec keeps. libuv's
 * children start with every signal at SIG_DFL, and so must ours.
 */
static void add_signal_bit(sigset_t *set, int sig) {
  unsigned long *words = (unsigned long *)set;
  const int bits = 8 * sizeof(unsigned long);
  words[(sig - 1) / bits] |= 1UL << ((sig - 1) % bits);
}

/*
 * spawn(file, argv, envp, fds) -> pid. fds[i] becomes the child's descriptor i (-1: closed); no
 * other descriptor is passed (Node and libuv open everything close-on-exec). Signal dispositions
 * back to default and an empty signal mask, as libuv gives its children (Node ignores SIGPIPE).
 * An exec failure (ENOENT, EACCES) is thrown here: glibc's posix_spawn reports it.
 */
static napi_value Spawn(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value a[4];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  if (argc < 4) {
    napi_throw_type_error(env, NULL, "spawn(file, argv, envp, fds)");
    return NULL;
  }
  char *file = cstring(env, a[0]);
  char **argv = cstrings(env, a[1]);
  char **envp = cstrings(env, a[2]);
  uint32_t nfds = 0;
  napi_get_array_length(env, a[3], &nfds);
  if (!file || !argv || !envp || nfds > MAX_FDS) {
    free(file);
    free_strings(argv);
    free_strings(envp);
    napi_throw_type_error(env, NULL, "spawn: file, argv and envp must be strings without NUL bytes, at most 16 descriptors");
    return NULL;
  }
  /* Sources are first copied above every target, so that mapping one cannot overwrite another. */
  int src[MAX_FDS], err = 0;
  for (uint32_t i = 0; i < nfds; i++) src[i] = -1;
  for (uint32_t i = 0; i < nfds && !err; i++) {
    napi_value e;
    int32_t fd = -1;
    napi_get_element(env, a[3], i, &e);
    napi_get_value_int32(env, e, &fd);
    if (fd >= 0 && (src[i] = fcntl(fd, F_DUPFD_CLOEXEC, MAX_FDS)) < 0) err = errno;
  }
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  sigset_t all, none;
  pid_t pid = -1;
  if (!err) {
    posix_spawn_file_actions_init(&fa);
    for (uint32_t i = 0; i < nfds; i++) {
      if (src[i] >= 0) posix_spawn_file_actions_adddup2(&fa, src[i], (int)i);
      else posix_spawn_file_actions_addclose(&fa, (int)i);
    }
    posix_spawnattr_init(&attr);
    sigfillset(&all);
    for (int sig = 1; sig < SIGRTMIN; sig++) add_signal_bit(&all, sig);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    err = posix_spawn(&pid, file, &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
  }
  for (uint32_t i = 0; i < nfds; i++)
    if (src[i] >= 0) close(src[i]);
  free(file);
  free_strings(argv);
  free_strings(envp);
  if (err) return throw_errno(env, "posix_spawn", err);
  napi_value out;
  napi_create_int32(env, pid, &out);
  return out;
}

/* socketpair() -> [ours, theirs], both close-on-exec: a child's stdio as libuv makes it. */
static napi_value SocketPair(napi_env env, napi_callback_info info) {
  (void)info;
  int p[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p)) return throw_errno(env, "socketpair", errno);
  napi_value arr, v;
  napi_create_array_with_length(env, 2, &arr);
  for (int i = 0; i < 2; i++) {
    napi_create_int32(env, p[i], &v);
    napi_set_element(env, arr, i, v);
  }
  return arr;
}

typedef struct Watch {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context context;
  pid_t pid;
  int pidfd;
  /* Freed when both the poll handle has closed and JS has dropped its handle object. */
  int holders;
  bool done;
  /* The watches not yet done, for shutdown. */
  struct Watch *prev, *next;
} Watch;

static Watch *live;
static bool shutting_down;

static void unlink_watch(Watch *w) {
  if (w->prev) w->prev->next = w->next;
  else live = w->next;
  if (w->next) w->next->prev = w->prev;
  w->prev = w->next = NULL;
}

/* Stops a watch and closes its poll without calling into JS. */
static void finish_watch(Watch *w);

static void release(Watch *w) {
  if (--w->holders == 0) free(w);
}

static void watch_closed(uv_handle_t *h) {
  Watch *w = h->data;
  close(w->pidfd);
  release(w);
}

static void on_exit_ready(uv_poll_t *h, int status, int events) {
  (void)status;
  (void)events;
  Watch *w = h->data;
  int st = 0;
  pid_t r = waitpid(w->pid, &st, WNOHANG);
  if (r == 0 || (r < 0 && errno == EINTR)) return;
  if (shutting_down) return finish_watch(w);
  uv_poll_stop(&w->poll);
  napi_env env = w->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value cb, recv, args[2];
  napi_get_reference_value(env, w->callback, &cb);
  napi_get_global(env, &recv);
  /* (code, signal): code -1 when killed by a signal; both -1 when the pid was not ours to reap. */
  napi_create_int32(env, r > 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1, &args[0]);
  napi_create_int32(env, r > 0 && WIFSIGNALED(st) ? WTERMSIG(st) : (r > 0 ? 0 : -1), &args[1]);
  napi_make_callback(env, w->context, recv, cb, 2, args, NULL);
  napi_close_handle_scope(env, scope);
  finish_watch(w);
}

static void finish_watch(Watch *w) {
  if (w->done) return;
  uv_poll_stop(&w->poll);
  w->done = true;
  unlink_watch(w);
  napi_delete_reference(w->env, w->callback);
  napi_async_destroy(w->env, w->context);
  uv_close((uv_handle_t *)&w->poll, watch_closed);
}

/*
 * shutdown(): stops every watch, without calling back. Called from process 'exit': after it Node
 * closes the children's pipes and runs the loop once more while it frees the environment, and a
 * child exiting then (the mount server, at its stdin's end) must not call into JS, which can no
 * longer run (V8 crashed in HandleScope there).
 */
static napi_value Shutdown(napi_env env, napi_callback_info info) {
  (void)env;
  (void)info;
  shutting_down = true;
  while (live) finish_watch(live);
  return NULL;
}

static void drop_handle(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  release(data);
}

/*
 * watch(pid, cb(code, signal)) -> handle: reaps the child when it exits and calls cb once, on the
 * event loop. The handle keeps the loop alive until setRef(handle, false).
 */
static napi_value WatchPid(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value a[2];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  int32_t pid = 0;
  if (argc < 2 || napi_get_value_int32(env, a[0], &pid) != napi_ok || pid <= 0) {
    napi_throw_type_error(env, NULL, "watch(pid, callback)");
    return NULL;
  }
  int fd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) return throw_errno(env, "pidfd_open", errno);
  Watch *w = calloc(1, sizeof *w);
  if (!w) {
    close(fd);
    return throw_errno(env, "watch", ENOMEM);
  }
  w->env = env;
  w->pid = pid;
  w->pidfd = fd;
  w->holders = 2;
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  int e = uv_poll_init(loop, &w->poll, fd);
  if (e) {
    close(fd);
    free(w);
    napi_throw_error(env, NULL, uv_strerror(e));
    return NULL;
  }
  w->poll.data = w;
  if ((e = uv_poll_start(&w->poll, UV_READABLE, on_exit_ready))) {
    /* An initialised handle is the loop's until closed: closing it closes the pidfd and frees w. */
    w->holders = 1;
    w->done = true;
    uv_close((uv_handle_t *)&w->poll, watch_closed);
    napi_throw_error(env, NULL, uv_strerror(e));
    return NULL;
  }
  w->next = live;
  if (live) live->prev = w;
  live = w;
  napi_create_reference(env, a[1], 1, &w->callback);
  napi_value name, handle;
  napi_create_string_utf8(env, "tsbuild.spawn", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &w->context);
  napi_create_external(env, w, drop_handle, NULL, &handle);
  return handle;
}

/* setRef(handle, on): whether a watched child keeps the event loop alive (no-op once it exited). */
static napi_value SetRef(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value a[2];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  void *data = NULL;
  bool on = true;
  if (argc < 2 || napi_get_value_external(env, a[0], &data) != napi_ok || !data) return NULL;
  napi_get_value_bool(env, a[1], &on);
  Watch *w = data;
  if (w->done) return NULL;
  if (on) uv_ref((uv_handle_t *)&w->poll);
  else uv_unref((uv_handle_t *)&w->poll);
  return NULL;
}

/* pidfdWorks() -> whether this kernel has pidfd_open (Linux 5.3), which watch needs. */
static napi_value PidfdWorks(napi_env env, napi_callback_info info) {
  (void)info;
  int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
  if (fd >= 0) close(fd);
  napi_value out;
  napi_get_boolean(env, fd >= 0, &out);
  return out;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = {
    {"spawn", NULL, Spawn, NULL, NULL, NULL, napi_default, NULL},
    {"socketpair", NULL, SocketPair, NULL, NULL, NULL, napi_default, NULL},
    {"watch", NULL, WatchPid, NULL, NULL, NULL, napi_default, NULL},
    {"setRef", NULL, SetRef, NULL, NULL, NULL, napi_default, NULL},
    {"pidfdWorks", NULL, PidfdWorks, NULL, NULL, NULL, napi_default, NULL},
    {"shutdown", NULL, Shutdown, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
