/** `tsbuild run`: an image's process in the sandbox on a fresh writable snapshot. */
import fs from 'node:fs';
import path from 'node:path';
import { TsbuildError, UsageError } from '../errors/index.js';
import { unpackLayers } from '../ops/index.js';
import { insecureFlag, pullPolicy, resolveOrPull } from './registry.js';
import { buildSpec, runSpec, layerDirs, readFileInLayers, resolveUser, SandboxError, missingMountPoints, mountDestinations, removeMountStubs, writeEtcFiles } from '../runtime/index.js';
import { flagBool, flagList, flagStr, type FlagSpec, type Parsed, rootFlag, helpFlag } from './args.js';
import { openStore, storeRoot } from './store.js';

export const runFlags: FlagSpec[] = [
  { name: 'rm', type: 'bool', help: 'remove the container when it exits' },
  { name: 'interactive', short: 'i', type: 'bool', help: 'keep stdin open' },
  { name: 'tty', short: 't', type: 'bool', help: 'allocate a pseudo-terminal' },
  { name: 'env', short: 'e', type: 'list', arg: 'KEY=VALUE', help: 'set an environment variable (repeatable)' },
  { name: 'workdir', short: 'w', type: 'string', arg: 'dir', help: 'working directory inside the container' },
  { name: 'user', short: 'u', type: 'string', arg: 'user[:group]', help: 'user to run as' },
  { name: 'name', type: 'string', arg: 'name', help: 'container name' },
  { name: 'entrypoint', type: 'string', arg: 'cmd', help: "override the image's ENTRYPOINT" },
  { name: 'hostname', type: 'string', arg: 'name', help: 'container hostname (default: short id)' },
  { name: 'network', type: 'string', arg: 'host|none', help: 'network (default host until bridge networking lands)' },
  { name: 'init', type: 'bool', help: 'run an init as PID 1 that reaps zombies and forwards signals' },
  { name: 'read-only', type: 'bool', help: 'mount the root filesystem read-only' },
  rootFlag,
  { name: 'snapshotter', type: 'string', arg: 'overlayfs', help: 'storage driver' },
  insecureFlag,
  { name: 'pull', type: 'string', arg: 'missing|always|never', help: 'pull the image before running (default missing; also TSBUILD_PULL)' },
  helpFlag,
];

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Docker's rule: Entrypoint + Cmd, where arguments after the image replace Cmd. */
export function containerArgs(entrypoint: string[] | null | undefined, cmd: string[] | null | undefined, override: string[], entryFlag?: string): string[] {
  const ep = entryFlag !== undefined ? (entryFlag === '' ? [] : [entryFlag]) : (entrypoint ?? []);
  const c = override.length > 0 ? override : entryFlag !== undefined ? [] : (cmd ?? []);
  return [...ep, ...c];
}

export async function runCommand(p: Parsed): Promise<number> {
  const [imageRef, ...cmd] = p.positional;
  if (!imageRef) throw new UsageError('run needs an image: tsbuild run [OPTIONS] IMAGE [COMMAND] [ARG...]');
  const network = flagStr(p, 'network') ?? 'host';
  if (network !== 'host' && network !== 'none') throw new UsageError(`--network ${network}: use host or none (bridge networking is not implemented yet)`);
  const name = flagStr(p, 'name');
  if (name !== undefined && !NAME_RE.test(name)) throw new UsageError(`invalid container name "${name}": use letters, digits, _ . -`);
  const envFlags = flagList(p, 'env');
  for (const e of envFlags) if (e.startsWith('=') || e === '') throw new UsageError(`-e ${e}: the variable name is empty`);
  const tty = flagBool(p, 'tty');
  const interactive = flagBool(p, 'interactive');
  const keep = !flagBool(p, 'rm');

  const store = await openStore(storeRoot(flagStr(p, 'root')), flagStr(p, 'snapshotter'));
  const img = await resolveOrPull(store, imageRef, p, { log: (l) => process.stderr.write(l + '\n'), policy: pullPolicy(flagStr(p, 'pull'), store.root) });
  const cfg = img.config.config ?? {};
  const args = containerArgs(cfg.Entrypoint, cfg.Cmd, cmd, flagStr(p, 'entrypoint'));
  if (args.length === 0) throw new UsageError(`image ${imageRef} has no CMD or ENTRYPOINT: give a command, e.g. tsbuild run ${imageRef} sh`);
  // Images built with another snapshotter (or pulled before) get their snapshots here.
  const top = await unpackLayers({ storeRoot: store.root, store: store.content, snapshotter: store.snapshotter }, img.manifest.layers.map((d, i) => ({ diffID: img.config.rootfs.diff_ids[i]!, descriptor: d })));

  const id = store.containers.newId();
  const short = id.slice(0, 12);
  const key = `ctr-${process.pid}-${short}`;
  const mounts = await store.snapshotter.prepare(key, top, keep ? { 'tsbuild.container': id } : {});
  const dir = store.containers.dirOf(id);
  const state = {
    id, name: name ?? short, image: imageRef, imageId: img.configDigest, command: args, created: new Date().toISOString(),
    status: 'created' as const, snapshot: key, keep,
  };
  try {
    store.containers.create(state);
  } catch (e) {
    await store.snapshotter.remove(key);
    throw e;
  }
  const hostname = flagStr(p, 'hostname') ?? short;
  const onSignal = new Map<NodeJS.Signals, () => void>();
  let exitCode = 125;
  let rawSet = false;
  try {
    const dirs = layerDirs(mounts);
    const user = resolveUser(flagStr(p, 'user') ?? cfg.User ?? '', readFileInLayers(dirs, '/etc/passwd'), readFileInLayers(dirs, '/etc/group'));
    const env = new Map<string, string>();
    env.set('PATH', '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
    env.set('HOSTNAME', hostname);
    for (const e of cfg.Env ?? []) {
      const i = e.indexOf('=');
      env.set(i < 0 ? e : e.slice(0, i), i < 0 ? '' : e.slice(i + 1));
    }
    if (tty) env.set('TERM', 'xterm');
    for (const e of envFlags) {
      const i = e.indexOf('=');
      if (i < 0) {
        const v = process.env[e];
        if (v !== undefined) env.set(e, v);
      } else env.set(e.slice(0, i), e.slice(i + 1));
    }
    if (!env.has('HOME')) env.set('HOME', user.home);
    const etcFiles = writeEtcFiles(path.join(dir, 'etc'), hostname, network);
    const rootPath = path.join(dir, 'rootfs');
    fs.mkdirSync(rootPath, { recursive: true });
    const spec = buildSpec({
      rootPath,
      rootMounts: mounts,
      args,
      env: [...env].map(([k, v]) => `${k}=${v}`),
      cwd: flagStr(p, 'workdir') ?? (cfg.WorkingDir || '/'),
      uid: user.uid,
      gid: user.gid,
      additionalGids: user.additionalGids,
      hostname,
      network,
      terminal: tty,
      init: flagBool(p, 'init'),
      readonlyRoot: flagBool(p, 'read-only'),
      etcFiles,
    });
    const stubs = missingMountPoints(dirs, mountDestinations(spec).map((m) => m.path));
    if (tty && process.stdin.isTTY) {
      process.stdin.setRawMode(true);
      rawSet = true;
    }
    let kill: ((s: NodeJS.Signals) => void) | undefined;
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as NodeJS.Signals[]) {
      const h = () => kill?.(s);
      onSignal.set(s, h);
      process.on(s, h);
    }
    store.containers.update(id, { status: 'running', pid: process.pid });
    const r = await runSpec(spec, {
      stdin: interactive ? 'inherit' : 'ignore',
      stdout: 'inherit',
      stderr: 'inherit',
      onStart: (info) => (kill = info.kill),
    });
    exitCode = r.exitCode;
    const upper = await store.snapshotter.upperDir?.(key);
    if (upper) removeMountStubs(upper, stubs);
    store.containers.update(id, { status: 'exited', exitCode });
  } catch (e) {
    store.containers.update(id, { status: 'exited', exitCode: 125 });
    if (e instanceof SandboxError && e.failure.stage === 'exec') {
      exitCode = e.failure.errno === 2 ? 127 : 126;
      throw Object.assign(new TsbuildError('RUN_EXEC', `cannot start the container's process: ${e.message}`), { exitCode });
    }
    throw e;
  } finally {
    if (rawSet) process.stdin.setRawMode(false);
    for (const [s, h] of onSignal) process.off(s, h);
    if (!keep) {
      await store.snapshotter.remove(key).catch(() => undefined);
      store.containers.delete(id);
    }
  }
  return exitCode;
}
