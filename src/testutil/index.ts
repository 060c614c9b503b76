/**
 * testutil: helpers for tests only: where things are, temp dirs and stores that are always removed,
 * the CLI run as a child, skips that say why, a btrfs on a loop device, a test registry, a token
 * issuer and a fault proxy on 127.0.0.1.
 *
 * Imports only image (to write tar fixtures); only tests (and the snapshotter suite) import it.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const sharedDir = process.env.TSBUILD_SHARED ?? path.resolve(repoRoot, '../shared');
export const conformanceDir = path.join(sharedDir, 'conformance/buildkit-parser');

export function tmpdir(prefix = 'tsb-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Bytes of `file` in the page cache (util-linux fincore). */
export function pageCacheBytes(file: string): number {
  const r = spawnSync('fincore', ['-n', '-b', '-o', 'RES', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`fincore ${file}: ${r.error?.message ?? r.stderr}`);
  return Number(r.stdout.trim());
}

/**
 * A temp dir on a filesystem whose page cache can be dropped (tmpfs keeps its pages), or undefined
 * after saying why the caller skips.
 */
export function droppableTmpdir(prefix: string): string | undefined {
  const d = tmpdir(prefix);
  const type = spawnSync('stat', ['-f', '-c', '%T', d], { encoding: 'utf8' }).stdout.trim();
  if (type !== 'tmpfs' && type !== 'ramfs') return d;
  fs.rmSync(d, { recursive: true, force: true });
  console.log(`  skipped: ${d} is on ${type}, which keeps its pages`);
  return undefined;
}

export function readJSON<T>(p: string): T {
  return JSON.parse(fs.readFileSync(p, 'utf8')) as T;
}


export const cliPath = path.join(repoRoot, 'bin/tsbuild');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The CLI's environment in tests, the same whether a file runs under scripts/run-tests.mjs or on its
 * own: no pulls, and the host network unless a test asks for a bridge (the network tests do, inside a
 * namespace of their own), so no test puts a bridge or NAT rules into this machine's namespace.
 */
const TEST_ENV = () => ({ ...process.env, TSBUILD_PULL: 'never', TSBUILD_NETWORK: process.env.TSBUILD_NETWORK ?? 'host' });

/** Runs the CLI against a given store; never inherits the developer's TSBUILD_ROOT. */
export function cli(args: string[], opts: { root: string; cwd?: string; input?: string; env?: Record<string, string>; timeoutMs?: number }): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cliPath, args, {
      cwd: opts.cwd,
      // Tests never reach Docker Hub: pulling is off unless a test (with its own registry) turns it on.
      env: { ...TEST_ENV(), TSBUILD_ROOT: opts.root, ...(opts.env ?? {}) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      resolve({ code: code ?? (sig ? 128 : 1), stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/**
 * Runs the CLI on a real pseudo-terminal (script(1)) and types each answer once its prompt shows, as
 * a person would (typed earlier, the terminal would echo it). Returns the exit status and the
 * terminal's output.
 */
export function onTerminal(args: string[], env: Record<string, string | undefined>, answers: [prompt: string, answer: string][]): Promise<{ status: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const c = spawn('script', ['-qec', [cliPath, ...args].join(' '), '/dev/null'], { env: { ...TEST_ENV(), ...env } });
    let out = '';
    const typed = new Set<string>();
    c.stdout.on('data', (d) => {
      out += d;
      for (const [q, a] of answers) {
        if (out.includes(q) && !typed.has(q)) {
          typed.add(q);
          setTimeout(() => c.stdin.write(a), 200);
        }
      }
    });
    const t = setTimeout(() => c.kill('SIGKILL'), 30_000);
    c.on('close', (status) => {
      clearTimeout(t);
      resolve({ status, stdout: out });
    });
  });
}

/** Starts the CLI and returns the child, for tests that signal it mid-way. */
export function cliSpawn(args: string[], root: string, env: Record<string, string> = {}) {
  return spawn(cliPath, args, { env: { ...TEST_ENV(), TSBUILD_ROOT: root, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

export function busyboxPath(): string | undefined {
  for (const p of ['/usr/bin/busybox', '/bin/busybox']) if (fs.existsSync(p)) return p;
  return undefined;
}

/** A build context with busybox and a Dockerfile whose first lines make a busybox base image. */
export function busyboxContext(dockerfileRest: string, files: Record<string, string> = {}): string {
  const dir = tmpdir('tsb-ctx-');
  fs.copyFileSync(busyboxPath()!, path.join(dir, 'busybox'));
  fs.chmodSync(path.join(dir, 'busybox'), 0o755);
  fs.writeFileSync(
    path.join(dir, 'Dockerfile'),
    'FROM scratch AS base\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n' + dockerfileRest,
  );
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), content);
  }
  return dir;
}

/** Why privileged tests cannot run here, or undefined when they can (probed by trying, not guessed). */
export function sandboxUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root';
  if (!busyboxPath()) return 'busybox not installed (apt-get install -y busybox-static)';
  const helper = path.join(repoRoot, 'native/build/tsbuild-sandbox');
  if (!fs.existsSync(helper)) return 'sandbox helper not built (npm ci)';
  const dir = tmpdir('tsb-probe-');
  try {
    fs.mkdirSync(path.join(dir, 'lower'));
    fs.mkdirSync(path.join(dir, 'upper'));
    fs.mkdirSync(path.join(dir, 'work'));
    fs.mkdirSync(path.join(dir, 'mnt'));
    const r = spawnSync(helper, ['mount', 'overlay', 'overlay', path.join(dir, 'mnt'), '0', `lowerdir=${dir}/lower,upperdir=${dir}/upper,workdir=${dir}/work`]);
    if (r.status !== 0) return `overlayfs mount failed: ${r.stderr.toString().trim()}`;
    spawnSync(helper, ['umount', path.join(dir, 'mnt')]);
    return undefined;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Mounts whose path mentions `needle` (a test's store root), from /proc/self/mountinfo. */
export function mountsUnder(needle: string): string[] {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(needle));
}

/**
 * Removes a test store, unmounting anything a failed test left under it first. Networks its
 * containers joined (a bridge, veths, namespaces, NAT rules: outside the store) are reclaimed by
 * tsbuild's own sweep first, so a test that failed or killed a container midway leaves none behind.
 */
export function removeStore(root: string): void {
  if (fs.existsSync(path.join(root, 'networks')) && fs.readdirSync(path.join(root, 'networks')).some((f) => f.endsWith('.json'))) {
    spawnSync(cliPath, ['network', 'prune', '-f'], { env: { ...TEST_ENV(), TSBUILD_ROOT: root }, stdio: 'ignore', timeout: 60_000 });
  }
  const helper = path.join(repoRoot, 'native/build/tsbuild-sandbox');
  for (const line of mountsUnder(root).reverse()) {
    const mp = line.split(' ')[4];
    if (mp) spawnSync(helper, ['umount', mp]);
  }
  fs.rmSync(root, { recursive: true, force: true });
}

export function pidsMatching(re: RegExp): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (re.test(cmd)) out.push(parseInt(d, 10));
    } catch {
      // process exited
    }
  }
  return out;
}

import { test as uvuTest } from 'uvu';
import { encodeHeader, END_OF_ARCHIVE, padding, type TarHeader } from '../image/index.js';

/** A tar archive of `entries` (regular files unless `type` says otherwise), for extraction fixtures. */
export function tarOf(entries: (Partial<TarHeader> & { name: string; body?: string | Buffer })[], opts: { truncate?: number } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const body = e.body ?? '';
    parts.push(encodeHeader({ type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1700000000, size: Buffer.byteLength(body), ...e }));
    if (body) parts.push(Buffer.from(body), padding(Buffer.byteLength(body)));
  }
  parts.push(END_OF_ARCHIVE);
  const b = Buffer.concat(parts);
  return opts.truncate ? b.subarray(0, opts.truncate) : b;
}

/** Fresh temp directories for every test of a file, removed after each: `dirs.root`, `dirs.host`, … */
export function dirsEach<K extends string>(names: K[], prefix: string, t: typeof uvuTest = uvuTest): Record<K, string> {
  const dirs = {} as Record<K, string>;
  t.before.each(() => {
    for (const n of names) dirs[n] = tmpdir(`${prefix}-${n}-`);
  });
  t.after.each(() => {
    for (const n of names) fs.rmSync(dirs[n], { recursive: true, force: true });
  });
  return dirs;
}

/**
 * Registers a test, or a skip that says why when `reason` is set, so an optional part that cannot run
 * here is counted as skipped (with its reason in the output), never as passed.
 */
export function testUnless(reason: string | undefined, name: string, fn: () => unknown | Promise<unknown>, t: typeof uvuTest = uvuTest): void {
  if (reason) t.skip(`${name} (skipped: ${reason})`, () => undefined);
  else t(name, fn as () => Promise<void>);
}

/** Why `program` cannot be run here (probed by running `program args`), or undefined when it can. */
export function programUnavailable(program: string, args: string[] = ['--version'], install = program): string | undefined {
  const r = spawnSync(program, args, { stdio: 'ignore' });
  if (r.error) return `${program} is not installed (apt-get install -y ${install})`;
  return undefined;
}

/** A mount as snapshotters describe it: mount(8)'s type, source and options, relative to `cwd`. */
export interface MountData {
  type: string;
  source: string;
  options: string[];
  cwd?: string;
}

/**
 * Mounts snapshotter mount data on `dir` with mount(8), runs `fn`, unmounts. Independent of the
 * store's own mount code on purpose: the data must mean the same to mount(8) as to tsbuild.
 */
export async function withMountedData<T>(mounts: MountData[], dir: string, fn: (dir: string) => Promise<T> | T): Promise<T> {
  fs.mkdirSync(dir, { recursive: true });
  let done = 0;
  try {
    for (const m of mounts) {
      const bind = m.type === 'bind' || m.type === 'rbind';
      const opts = bind ? [m.type, ...m.options.filter((o) => o !== 'bind' && o !== 'rbind')] : m.options;
      const args = [...(bind ? [] : ['-t', m.type]), ...(opts.length ? ['-o', opts.join(',')] : []), m.source, dir];
      const r = spawnSync('mount', args, { cwd: m.cwd, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`mount ${args.join(' ')} failed: ${r.stderr.trim()}`);
      done++;
    }
    return await fn(dir);
  } finally {
    for (; done > 0; done--) spawnSync('umount', [dir]);
    fs.rmdirSync(dir);
  }
}

/**
 * The shared setup of CLI end-to-end test files: a private store, busybox contexts that are removed
 * afterwards, and `it`, which registers a test or, where the sandbox cannot run, a skip with the reason.
 */
export function e2eHarness(prefix: string) {
  const why = sandboxUnavailable();
  const root = tmpdir(`tsb-${prefix}-store-`);
  const dirs: string[] = [];
  const it = why ? (name: string, _fn: () => Promise<void>) => uvuTest.skip(`${name} (skipped: ${why})`) : (name: string, fn: () => Promise<void>) => uvuTest(name, fn);
  if (why) console.log(`  ${prefix} tests skipped: ${why}`);
  const ctx = (rest: string, files?: Record<string, string>) => {
    const d = busyboxContext(rest, files);
    dirs.push(d);
    return d;
  };
  uvuTest.after(() => {
    removeStore(root);
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });
  /** `it`, or a skip with `reason` when an optional tool this test needs is missing. */
  const itUnless = (reason: string | undefined, name: string, fn: () => Promise<void>) => testUnless(why ?? reason, name, fn);
  /**
   * Reports an optional part of a larger test as skipped, with its reason, when `reason` is set; the
   * test then leaves that part out (`if (!reason) …`), and the skip is counted, not hidden in a pass.
   */
  const skipPart = (reason: string | undefined, name: string) => {
    if (reason && !why) uvuTest.skip(`${name} (skipped: ${reason})`, () => undefined);
  };
  return { it, itUnless, skipPart, root, dirs, ctx, test: uvuTest };
}

/**
 * A loop-mounted btrfs filesystem of the test's own (btrfs-progs and loop devices needed), or the
 * reason it cannot be made. `dispose` unmounts it and frees the loop device, even after failures.
 */
/** A directory of a test's own with an empty image file of `sizeMiB` and a mount point beside it. */
function imageDir(prefix: string, sizeMiB: number): { base: string; img: string; mnt: string; fail: (why: string) => { unavailable: string } } {
  const base = tmpdir(prefix);
  const img = path.join(base, 'fs.img');
  const mnt = path.join(base, 'mnt');
  fs.mkdirSync(mnt);
  fs.writeFileSync(img, '');
  fs.truncateSync(img, sizeMiB * 1024 * 1024);
  const fail = (why: string) => {
    fs.rmSync(base, { recursive: true, force: true });
    return { unavailable: why };
  };
  return { base, img, mnt, fail };
}

export function makeBtrfs(sizeMiB = 768): { dir: string; dispose: () => void } | { unavailable: string } {
  const helper = path.join(repoRoot, 'native/build/tsbuild-sandbox');
  const { base, img, mnt, fail } = imageDir('tsb-btrfs-', sizeMiB);
  const mk = spawnSync('mkfs.btrfs', ['-q', img], { encoding: 'utf8' });
  if (mk.error || mk.status !== 0) return fail(`mkfs.btrfs unavailable (${(mk.error?.message ?? mk.stderr).trim()}): apt-get install -y btrfs-progs`);
  const lo = spawnSync('losetup', ['-f', '--show', img], { encoding: 'utf8' });
  if (lo.status !== 0) return fail(`no loop device: ${lo.stderr.trim()}`);
  const dev = lo.stdout.trim();
  const m = spawnSync(helper, ['mount', 'btrfs', dev, mnt, '0', ''], { encoding: 'utf8' });
  if (m.status !== 0) {
    spawnSync('losetup', ['-d', dev]);
    return fail(`mounting btrfs failed: ${m.stderr.trim()}`);
  }
  return {
    dir: mnt,
    dispose: () => {
      spawnSync(helper, ['umount', mnt]);
      spawnSync('losetup', ['-d', dev]);
      fs.rmSync(base, { recursive: true, force: true });
    },
  };
}
/**
 * A small ext4 on a loop device, mounted (root only): `journal: false` makes it without one
 * (`mkfs.ext4 -O ^has_journal`), where ext4's inode allocation steps over recent deletions.
 */
export function makeExt4(o: { journal: boolean; sizeMiB?: number }): { dir: string; dispose: () => void } | { unavailable: string } {
  const { base, img, mnt, fail } = imageDir('tsb-ext4-', o.sizeMiB ?? 64);
  const mk = spawnSync('mkfs.ext4', ['-q', '-F', ...(o.journal ? [] : ['-O', '^has_journal']), img], { encoding: 'utf8' });
  if (mk.error || mk.status !== 0) return fail(`mkfs.ext4 unavailable (${(mk.error?.message ?? mk.stderr).trim()}): apt-get install -y e2fsprogs`);
  const m = spawnSync('mount', ['-o', 'loop', img, mnt], { encoding: 'utf8' });
  if (m.error || m.status !== 0) return fail(`mounting an ext4 image failed: ${(m.error?.message ?? m.stderr).trim()}`);
  return {
    dir: mnt,
    dispose: () => {
      // umount of a `-o loop` mount detaches its loop device too.
      spawnSync('umount', [mnt]);
      fs.rmSync(base, { recursive: true, force: true });
    },
  };
}
export { registryUnavailable, freePort, startRegistry, startTokenIssuer, startFaultProxy, makeTestCA } from './registry.js';
export type { TestRegistry, TokenIssuer, FaultProxy, Fault, RegistryAuth, TestCA } from './registry.js';

/** Step names that executed (DONE, not CACHED) in a plain log. */
export function executedSteps(log: string): string[] {
  const names = new Map<string, string>();
  const out: string[] = [];
  for (const l of log.split('\n')) {
    const m = /^#(\d+) (\[.*)$/.exec(l);
    if (m) names.set(m[1]!, m[2]!);
    const d = /^#(\d+) DONE/.exec(l);
    if (d && names.has(d[1]!)) out.push(names.get(d[1]!)!);
  }
  return out;
}

/** An overlay store's snapshot table, as written. */
export type SnapshotTable = { snapshots: Record<string, { kind: string; labels: Record<string, string> }> };
export function snapshotTable(root: string): SnapshotTable {
  return JSON.parse(fs.readFileSync(path.join(root, 'snapshots', 'overlayfs', 'metadata.json'), 'utf8')) as SnapshotTable;
}

/** A restart of the machine, as an overlay store sees it: its unsynced snapshots and its last sweep belong to another boot. */
export function asIfRestarted(root: string): void {
  const t = snapshotTable(root);
  for (const r of Object.values(t.snapshots)) if (r.labels['tsbuild.unsynced-boot']) r.labels['tsbuild.unsynced-boot'] = 'an-earlier-boot';
  fs.writeFileSync(path.join(root, 'snapshots', 'overlayfs', 'metadata.json'), JSON.stringify(t));
  fs.writeFileSync(path.join(root, 'tmp', 'live', 'swept'), 'an-earlier-boot');
}
