/** `tsbuild cache ls`, `tsbuild cache prune` / `tsbuild prune`, and automatic GC after builds. */
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors/index.js';
import { CacheIndex, type CacheRecord } from '../cache/index.js';
import { gcStore, cacheMountDir } from '../ops/index.js';
import { diffUpperDir, extractTar } from '../image/index.js';
import { duSync } from '../snapshotter/index.js';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { readJSONFile } from '../fsutil/index.js';
import { flagBool, flagList, flagStr, type FlagSpec, type Parsed, rootFlag, helpFlag } from './args.js';
import { humanSize, table } from './format.js';
import { openStore, storeRoot, type Store } from './store.js';
import { blobSources, insecureFlag } from './registry.js';

export const cacheFlags: FlagSpec[] = [
  rootFlag,
  { name: 'keep-storage', type: 'string', arg: 'SIZE', help: 'prune: keep at most this much cache (e.g. 10GB), least recently used first out' },
  { name: 'filter', type: 'list', arg: 'until=DURATION', help: 'prune: only records not used for this long (e.g. until=24h)' },
  { name: 'all', short: 'a', type: 'bool', help: 'prune: every record' },
  { name: 'force', short: 'f', type: 'bool', help: 'accepted for Docker compatibility; prune never asks' },
  { name: 'mounts', type: 'bool', help: 'ls: list RUN --mount=type=cache directories' },
  { name: 'output', short: 'o', type: 'string', arg: 'DIR|type=registry,ref=R', help: 'export-mounts: directory or registry ref to write the cache mounts to' },
  { name: 'input', short: 'i', type: 'string', arg: 'DIR|type=registry,ref=R', help: 'import-mounts: directory or registry ref written by export-mounts' },
  insecureFlag,
  helpFlag,
];

export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)$/i.exec(s.trim());
  if (!m) throw new UsageError(`invalid size "${s}": use a number with an optional unit, e.g. 512MB or 10GB`);
  const unit = m[2]!.toLowerCase();
  const base = m[3]!.toLowerCase().startsWith('i') ? 1024 : 1000;
  const pow = { '': 0, k: 1, m: 2, g: 3, t: 4 }[unit] ?? 0;
  return Math.round(parseFloat(m[1]!) * base ** pow);
}

export function parseUntil(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h|d)$/.exec(s.trim());
  if (!m) throw new UsageError(`invalid duration "${s}": use e.g. 30m, 24h or 7d`);
  return parseFloat(m[1]!) * { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

/** Records to drop: older than `until`, then least recently used until the rest fits `keepStorage`. */
export function selectPrune(records: CacheRecord[], o: { all?: boolean; untilMs?: number; keepStorage?: number; now?: number }): CacheRecord[] {
  if (o.all) return records;
  const now = o.now ?? Date.now();
  const drop = new Set<CacheRecord>();
  if (o.untilMs !== undefined) for (const r of records) if (now - Date.parse(r.lastUsed) > o.untilMs) drop.add(r);
  if (o.keepStorage !== undefined) {
    let total = records.filter((r) => !drop.has(r)).reduce((a, r) => a + r.size, 0);
    for (const r of [...records].sort((a, b) => a.lastUsed.localeCompare(b.lastUsed))) {
      if (total <= o.keepStorage) break;
      if (drop.has(r)) continue;
      drop.add(r);
      total -= r.size;
    }
  }
  if (o.untilMs === undefined && o.keepStorage === undefined) return records;
  return [...drop];
}

/** Snapshots and blobs that cache records keep alive, for GC. */
export function cacheRoots(idx: CacheIndex): { snapshots: string[]; blobs: string[] } {
  const recs = idx.list();
  return { snapshots: recs.flatMap((r) => (r.snapshot ? [r.snapshot] : [])), blobs: recs.flatMap((r) => (r.layer ? [r.layer.descriptor.digest] : [])) };
}

export async function gcWithCache(s: Store): Promise<{ blobBytes: number; snapshots: number }> {
  const roots = cacheRoots(new CacheIndex(s.root));
  const r = await gcStore(s.content, s.snapshotter, [...s.containers.list().map((c) => c.snapshot), ...roots.snapshots], roots.blobs);
  // Where blobs live in registries matters only for blobs we still have (cross-repository mounts).
  blobSources(s.root).retain((d) => s.content.has(d));
  return r;
}

export interface CacheMountInfo {
  id: string;
  dir: string;
  size: number;
  lastUsed: Date;
}

export function listCacheMounts(root: string): CacheMountInfo[] {
  const base = path.join(root, 'cache', 'mounts');
  if (!fs.existsSync(base)) return [];
  return fs.readdirSync(base).filter((e) => !e.includes('.')).map((e) => {
    const dir = path.join(base, e);
    let id = e;
    try {
      id = fs.readFileSync(`${dir}.id`, 'utf8');
    } catch {
      // an id file is written on each use; a mount from before that keeps its hash as name
    }
    const idStat = fs.existsSync(`${dir}.id`) ? fs.statSync(`${dir}.id`) : fs.statSync(dir);
    return { id, dir, size: duSync(dir).size, lastUsed: idStat.mtime };
  });
}

export async function pruneCache(s: Store, o: { all?: boolean; untilMs?: number; keepStorage?: number }): Promise<{ records: number; bytes: number }> {
  const idx = new CacheIndex(s.root);
  const drop = selectPrune(idx.list(), o);
  for (const r of drop) idx.remove(r.key);
  // Cache mounts go with the rest: all of them, or those unused for longer than `until`.
  if (o.keepStorage === undefined) {
    for (const m of listCacheMounts(s.root)) {
      if (o.untilMs !== undefined && !o.all && Date.now() - m.lastUsed.getTime() <= o.untilMs) continue;
      if (fs.existsSync(`${m.dir}.lock`)) continue;
      fs.rmSync(m.dir, { recursive: true, force: true });
      fs.rmSync(`${m.dir}.id`, { force: true });
    }
  }
  const g = await gcWithCache(s);
  return { records: drop.length, bytes: g.blobBytes };
}

/** `<store>/config.json`: `{ "gc": { "keepStorage": "10GB" } }` prunes after every build. */
export async function autoGc(s: Store): Promise<void> {
  const cfg = readJSONFile<{ gc?: { keepStorage?: string } }>(path.join(s.root, 'config.json'), {});
  if (!cfg.gc?.keepStorage) return;
  await pruneCache(s, { keepStorage: parseSize(cfg.gc.keepStorage) });
}

/** `type=registry,ref=R` → R; a plain path → undefined (a directory). */
function registryTarget(v: string, flag: string): string | undefined {
  if (!v.startsWith('type=')) return undefined;
  const kv = new Map(v.split(',').map((x) => [x.slice(0, x.indexOf('=')), x.slice(x.indexOf('=') + 1)] as [string, string]));
  if (kv.get('type') === 'local') return undefined;
  if (kv.get('type') !== 'registry') throw new UsageError(`${flag} ${v}: use a directory or type=registry,ref=R`);
  const ref = kv.get('ref');
  if (!ref) throw new UsageError(`${flag} ${v}: give ref=REGISTRY/NAME:TAG`);
  return ref;
}

/** A cache mount's contents as a tar stream. */
export function mountTar(dir: string): Readable {
  return Readable.from(diffUpperDir(dir, { opaqueDirs: new Set() }));
}

/** Replaces cache mount `id` with the tar's contents (extracted aside, then renamed into place). */
export async function restoreMount(root: string, id: string, tar: Readable): Promise<void> {
  const target = cacheMountDir(root, id);
  const tmp = `${target}.import-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  try {
    await extractTar(tar, tmp);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  fs.rmSync(target, { recursive: true, force: true });
  fs.renameSync(tmp, target);
  fs.writeFileSync(`${target}.id`, id);
}

export async function cacheCommand(sub: string | undefined, p: Parsed): Promise<number> {
  const s = await openStore(storeRoot(flagStr(p, 'root')));
  if (sub === 'ls' && !flagBool(p, 'mounts')) {
    const recs = new CacheIndex(s.root).list().sort((a, b) => b.lastUsed.localeCompare(a.lastUsed));
    const rows = [['KEY', 'SIZE', 'LAST USED', 'STEP']];
    for (const r of recs) rows.push([r.key.slice(7, 19), humanSize(r.size), r.lastUsed.replace('T', ' ').slice(0, 19), r.description]);
    process.stdout.write(table(rows));
    process.stdout.write(`${recs.length} records, ${humanSize(recs.reduce((a, r) => a + r.size, 0))}\n`);
    return 0;
  }
  if (sub === 'ls' && flagBool(p, 'mounts')) {
    const ms = listCacheMounts(s.root);
    const rows = [['ID', 'SIZE', 'LAST USED'], ...ms.map((m) => [m.id, humanSize(m.size), m.lastUsed.toISOString().replace('T', ' ').slice(0, 19)])];
    process.stdout.write(table(rows));
    return 0;
  }
  if (sub === 'export-mounts') {
    const out = flagStr(p, 'output') ?? p.positional[0];
    if (!out) throw new UsageError('cache export-mounts needs --output DIR or --output type=registry,ref=R');
    const reg = registryTarget(out, '--output');
    if (reg) {
      const { exportMountsToRegistry } = await import('./remotecache.js');
      const n = await exportMountsToRegistry(s, reg, p, { log: (l) => process.stderr.write(l + '\n') });
      process.stdout.write(`exported ${n} cache mounts to ${reg}\n`);
      return 0;
    }
    fs.mkdirSync(out, { recursive: true });
    const index: Record<string, string> = {};
    for (const m of listCacheMounts(s.root)) {
      const file = `${path.basename(m.dir)}.tar`;
      await pipeline(mountTar(m.dir), fs.createWriteStream(path.join(out, file)));
      index[m.id] = file;
    }
    fs.writeFileSync(path.join(out, 'tsbuild-cache-mounts.json'), JSON.stringify({ version: 1, mounts: index }, null, 1));
    process.stdout.write(`exported ${Object.keys(index).length} cache mounts to ${out}\n`);
    return 0;
  }
  if (sub === 'import-mounts') {
    const dir = flagStr(p, 'input') ?? p.positional[0];
    if (!dir) throw new UsageError('cache import-mounts needs --input DIR or --input type=registry,ref=R');
    const reg = registryTarget(dir, '--input');
    if (reg) {
      const { importMountsFromRegistry } = await import('./remotecache.js');
      const n = await importMountsFromRegistry(s, reg, p, { log: (l) => process.stderr.write(l + '\n') });
      process.stdout.write(`imported ${n} cache mounts\n`);
      return 0;
    }
    const manifest = path.join(dir, 'tsbuild-cache-mounts.json');
    if (!fs.existsSync(manifest)) throw new UsageError(`${dir} has no tsbuild-cache-mounts.json: give a directory written by "tsbuild cache export-mounts"`);
    const { mounts } = JSON.parse(fs.readFileSync(manifest, 'utf8')) as { mounts: Record<string, string> };
    let n = 0;
    for (const [id, file] of Object.entries(mounts)) {
      if (file.includes('/') || file.startsWith('.')) throw new UsageError(`${manifest}: bad entry ${file}`);
      await restoreMount(s.root, id, fs.createReadStream(path.join(dir, file)));
      n++;
    }
    process.stdout.write(`imported ${n} cache mounts\n`);
    return 0;
  }
  if (sub === 'prune') {
    const until = flagList(p, 'filter').map((f) => {
      if (!f.startsWith('until=')) throw new UsageError(`--filter ${f}: only until=DURATION is supported`);
      return parseUntil(f.slice(6));
    })[0];
    const ks = flagStr(p, 'keep-storage');
    const r = await pruneCache(s, { all: flagBool(p, 'all'), untilMs: until, keepStorage: ks !== undefined ? parseSize(ks) : undefined });
    process.stdout.write(`Deleted ${r.records} cache records; reclaimed ${humanSize(r.bytes)}\n`);
    return 0;
  }
  throw new UsageError(`cache needs a subcommand: ls [--mounts], prune, export-mounts --output DIR or import-mounts --input DIR (got ${sub ?? 'nothing'})`);
}

