/** `images`, `inspect`, `rmi`, `ps`, `rm`: looking at and cleaning the store. */
import { TsbuildError, UsageError } from '../errors/index.js';
import { gcWithCache } from './cache.js';
import type { ImageConfig, Manifest } from '../image/index.js';
import { flagBool, flagStr, type FlagSpec, type Parsed, rootFlag, helpFlag } from './args.js';
import { humanSize, table } from './format.js';
import { openStore, storeRoot, type Store } from './store.js';

export const commonFlags: FlagSpec[] = [
  rootFlag,
  helpFlag,
];
export const rmiFlags: FlagSpec[] = [...commonFlags, { name: 'force', short: 'f', type: 'bool', help: 'remove even if a container uses it' }];
export const psFlags: FlagSpec[] = [...commonFlags, { name: 'all', short: 'a', type: 'bool', help: 'show exited containers too' }];
export const imagesFlags: FlagSpec[] = [...commonFlags, { name: 'quiet', short: 'q', type: 'bool', help: 'only ids' }];

function ago(iso: string | undefined): string {
  if (!iso) return 'N/A';
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.floor(s)} seconds ago`;
  if (s < 3600) return `${Math.floor(s / 60)} minutes ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} hours ago`;
  if (s < 86400 * 365) return `${Math.floor(s / 86400)} days ago`;
  return `${Math.floor(s / (86400 * 365))} years ago`;
}

async function open(p: Parsed): Promise<Store> {
  return openStore(storeRoot(flagStr(p, 'root')));
}

export async function imagesCommand(p: Parsed): Promise<number> {
  const s = await open(p);
  const rows: string[][] = [['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE']];
  for (const r of s.content.list()) {
    const m = s.content.readJSON<Manifest>(r.manifest.digest);
    const c = s.content.readJSON<ImageConfig>(m.config.digest);
    const size = m.layers.reduce((a, l) => a + l.size, 0);
    const i = r.name.lastIndexOf(':');
    if (flagBool(p, 'quiet')) rows.push([m.config.digest.slice(7, 19)]);
    else rows.push([r.name.slice(0, i), r.name.slice(i + 1), m.config.digest.slice(7, 19), ago(c.created), humanSize(size)]);
  }
  for (const d of s.content.dangling()) {
    const m = s.content.readJSON<Manifest>(d.digest);
    const c = s.content.readJSON<ImageConfig>(m.config.digest);
    const size = m.layers.reduce((a, l) => a + l.size, 0);
    rows.push(flagBool(p, 'quiet') ? [m.config.digest.slice(7, 19)] : ['<none>', '<none>', m.config.digest.slice(7, 19), ago(c.created), humanSize(size)]);
  }
  if (flagBool(p, 'quiet')) process.stdout.write(rows.slice(1).map((r) => r[0]).join('\n') + (rows.length > 1 ? '\n' : ''));
  else process.stdout.write(table(rows));
  return 0;
}

export async function inspectCommand(p: Parsed): Promise<number> {
  if (p.positional.length === 0) throw new UsageError('inspect needs an image: tsbuild inspect IMAGE [IMAGE...]');
  const s = await open(p);
  const out = p.positional.map((ref) => {
    const r = s.content.resolve(ref);
    const names = s.content.list().filter((x) => x.manifest.digest === r.manifestDigest).map((x) => x.name);
    return { Id: r.configDigest, RepoTags: names, Digest: r.manifestDigest, Created: r.config.created, Architecture: r.config.architecture, Os: r.config.os, Author: r.config.author, Config: r.config.config, RootFS: r.config.rootfs, History: r.config.history, Manifest: r.manifest, Size: r.manifest.layers.reduce((a, l) => a + l.size, 0) };
  });
  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  return 0;
}

export async function rmiCommand(p: Parsed): Promise<number> {
  if (p.positional.length === 0) throw new UsageError('rmi needs an image: tsbuild rmi IMAGE [IMAGE...]');
  const s = await open(p);
  for (const ref of p.positional) {
    const r = s.content.resolve(ref);
    const users = s.containers.list().filter((c) => c.imageId === r.configDigest);
    if (users.length && !flagBool(p, 'force')) {
      throw new TsbuildError('IMAGE_IN_USE', `image ${ref} is used by container ${users[0]!.name}: remove it with "tsbuild rm ${users[0]!.name}" or use -f`);
    }
    const names = r.name && !/^(sha256:)?[a-f0-9]{4,64}$/.test(ref) ? [r.name] : s.content.list().filter((x) => x.manifest.digest === r.manifestDigest).map((x) => x.name);
    for (const n of names) {
      s.content.untag(n);
      process.stdout.write(`Untagged: ${n}\n`);
    }
    if (!r.name || /^(sha256:)?[a-f0-9]{4,64}$/.test(ref)) s.content.removeDangling(r.manifestDigest);
    if (!s.content.list().some((x) => x.manifest.digest === r.manifestDigest)) process.stdout.write(`Deleted: ${r.configDigest}\n`);
  }
  await gcWithCache(s);
  return 0;
}

export async function psCommand(p: Parsed): Promise<number> {
  const s = await open(p);
  const rows: string[][] = [['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'NAMES']];
  for (const c of s.containers.list()) {
    if (!flagBool(p, 'all') && c.status !== 'running') continue;
    const cmd = JSON.stringify(c.command.join(' ').slice(0, 20));
    rows.push([c.id.slice(0, 12), c.image, cmd, ago(c.created), c.status === 'exited' ? `Exited (${c.exitCode ?? '?'})` : c.status, c.name]);
  }
  process.stdout.write(table(rows));
  return 0;
}

export async function rmCommand(p: Parsed): Promise<number> {
  if (p.positional.length === 0) throw new UsageError('rm needs a container: tsbuild rm CONTAINER [CONTAINER...]');
  const s = await open(p);
  for (const ref of p.positional) {
    const c = s.containers.find(ref);
    if (c.status === 'running' && c.pid) {
      try {
        process.kill(c.pid, 0);
        throw new TsbuildError('CONTAINER_RUNNING', `container ${ref} is running (tsbuild pid ${c.pid}): stop it first`);
      } catch (e) {
        if (e instanceof TsbuildError) throw e;
      }
    }
    await s.snapshotter.remove(c.snapshot).catch(() => undefined);
    s.containers.delete(c.id);
    process.stdout.write(`${ref}\n`);
  }
  return 0;
}
