/**
 * Starting the helper (and ip, nft) without forking Node. child_process forks: the kernel copies the
 * page tables of all of Node and write-protects its memory, the event loop waits until the child has
 * exec'd (6-12 ms from a build on a VM where a page fault costs 10 us), and Node's next writes to its
 * heap fault again. The native addon (native/spawn.c, built beside the helper) uses posix_spawn,
 * which shares the memory until exec (about 1 ms), and watches the exit through a pidfd on Node's
 * event loop.
 *
 * Without the addon (no Node headers when it was built, another kernel, TSBUILD_SPAWN=node) the same
 * calls go through child_process: same behaviour, the fork's cost.
 */
import { spawn as nodeSpawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import util from 'node:util';
import { loadAddon } from '../fsutil/index.js';

interface Addon {
  spawn(file: string, argv: string[], envp: string[], fds: number[]): number;
  socketpair(): [number, number];
  watch(pid: number, onExit: (code: number, signal: number) => void): object;
  setRef(handle: object, on: boolean): void;
  pidfdWorks(): boolean;
  shutdown(): void;
}

export type StdioKind = 'pipe' | 'inherit' | 'ignore';

/** What tsbuild uses of a child process; child_process's ChildProcess has the same shape. */
export interface Child extends EventEmitter {
  readonly pid?: number | undefined;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  readonly stdio: readonly (Readable | Writable | null | undefined)[];
  kill(signal?: NodeJS.Signals): boolean;
  ref(): void;
  unref(): void;
}

let loaded: { addon: Addon } | { reason: string } | undefined;

function load(): { addon: Addon } | { reason: string } {
  if (loaded) return loaded;
  if (process.env.TSBUILD_SPAWN === 'node') return (loaded = { reason: 'TSBUILD_SPAWN=node' });
  const l = loadAddon<Addon>('spawn');
  if (!('addon' in l)) return (loaded = l);
  const addon = l.addon;
  // Exits are watched through pidfds (Linux 5.3).
  loaded = addon.pidfdWorks() ? { addon } : { reason: 'this kernel has no pidfd_open (Linux 5.3 and later)' };
  // After 'exit' JS cannot run, but Node still closes the children's pipes and turns the event
  // loop while it frees itself: a child exiting then must not be reported (it crashed V8).
  if ('addon' in loaded) process.once('exit', () => addon.shutdown());
  return loaded;
}

/** How children start here, for `tsbuild info`. */
export function spawnMethod(): string {
  const l = load();
  return 'addon' in l ? 'posix_spawn (native/build/tsbuild-spawn.node)' : `fork (child_process): ${l.reason}`;
}

const signalNames = new Map(Object.entries(os.constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

class NativeChild extends EventEmitter implements Child {
  pid: number | undefined;
  readonly stdio: (net.Socket | null)[] = [];
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  private watch: object | undefined;
  private exited = false;
  private closesNeeded = 1;

  constructor(private readonly addon: Addon, file: string, args: string[], stdio: StdioKind[], env: NodeJS.ProcessEnv, argv0 = file) {
    super();
    const theirs: number[] = [];
    const opened: number[] = [];
    const ours: (number | undefined)[] = [];
    let failure: (Error & { errno?: number }) | undefined;
    try {
      for (const [i, kind] of stdio.entries()) {
        if (kind === 'inherit') theirs.push(i <= 2 ? i : -1);
        else if (kind === 'ignore') {
          const fd = fs.openSync('/dev/null', i === 0 ? 'r' : 'w');
          opened.push(fd);
          theirs.push(fd);
        } else {
          const [mine, child] = addon.socketpair();
          opened.push(child);
          ours[i] = mine;
          theirs.push(child);
        }
      }
      const envp = Object.entries(env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`]));
      this.pid = addon.spawn(file, [argv0, ...args], envp, theirs);
    } catch (e) {
      const errno = (e as { errno?: number }).errno;
      const code = errno === undefined ? undefined : util.getSystemErrorName(-errno);
      failure = Object.assign(new Error(`spawn ${argv0} ${code ?? (e as Error).message}`), { code, errno: -(errno ?? 1), syscall: `spawn ${argv0}`, path: argv0 });
    } finally {
      for (const fd of opened) fs.closeSync(fd);
    }
    // Streams even when the spawn failed, as child_process gives: their other ends are closed, so
    // they end at once.
    for (const [i, fd] of ours.entries()) {
      if (fd === undefined) {
        this.stdio[i] = null;
        continue;
      }
      const s = new net.Socket({ fd, readable: i > 0, writable: true });
      this.stdio[i] = s;
      if (i > 0) {
        this.closesNeeded++;
        s.on('close', () => this.maybeClose());
      }
    }
    for (let i = this.stdio.length; i < stdio.length; i++) this.stdio[i] = null;
    if (failure) {
      const f = failure;
      // As child_process: 'error' once the caller has had a chance to listen, then 'close' with the
      // negative errno, and no 'exit'.
      process.nextTick(() => {
        this.exited = true;
        this.exitCode = f.errno ?? -1;
        this.stdio[0]?.destroy();
        this.emit('error', f);
        this.maybeClose();
      });
      return;
    }
    this.watch = addon.watch(this.pid!, (code, sig) => {
      this.exited = true;
      this.exitCode = code >= 0 ? code : null;
      this.signalCode = sig > 0 ? signalNames.get(sig) ?? null : null;
      // child_process lets stdin go when the child has exited: nothing will read it.
      this.stdio[0]?.destroy();
      this.emit('exit', this.exitCode, this.signalCode);
      this.maybeClose();
    });
  }

  private maybeClose() {
    if (--this.closesNeeded === 0) this.emit('close', this.exitCode, this.signalCode);
  }

  get stdin() {
    return this.stdio[0] ?? null;
  }
  get stdout() {
    return this.stdio[1] ?? null;
  }
  get stderr() {
    return this.stdio[2] ?? null;
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    // The pid stays ours until the watch reaps it, so it cannot name another process here.
    if (this.pid === undefined || this.exited) return false;
    try {
      process.kill(this.pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  ref() {
    if (this.watch) this.addon.setRef(this.watch, true);
  }
  unref() {
    if (this.watch) this.addon.setRef(this.watch, false);
  }
}

const found = new Map<string, string>();

/** A program named without a slash, found on PATH as execvp finds it (undefined: not there). */
function onPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  const dirs = env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  const known = found.get(`${dirs}\0${name}`);
  if (known) return known;
  for (const dir of dirs.split(':')) {
    const file = path.resolve(dir || '.', name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      if (!fs.statSync(file).isFile()) continue;
      found.set(`${dirs}\0${name}`, file);
      return file;
    } catch {
      // not here: the next directory
    }
  }
  return undefined;
}

/**
 * Starts `file` with `args` (a name without a slash is looked up on PATH); `stdio[i]` is the child's
 * descriptor i: a socket pair ('pipe', as child_process makes them), the parent's own (0-2 only) or
 * /dev/null. A program that cannot start is an 'error' event (ENOENT, EACCES), as child_process's.
 */
export function spawnChild(file: string, args: string[], opts: { stdio: StdioKind[]; env?: NodeJS.ProcessEnv; via?: 'node' }): Child {
  const l = opts.via === 'node' ? undefined : load();
  if (!l || !('addon' in l)) return nodeSpawn(file, args, { stdio: opts.stdio, env: opts.env }) as Child;
  const env = opts.env ?? process.env;
  const abs = file.includes('/') ? file : onPath(file, env);
  // Not found: posix_spawn of the bare name fails with ENOENT, reported as child_process reports it.
  return new NativeChild(l.addon, abs ?? file, args, opts.stdio, env, file);
}
