/**
 * `--cache-to type=registry,ref=R[,mode=min|max][,mounts=true]` and
 * `--cache-from type=registry,ref=R[,mounts=true]`: build cache shared through a registry, so a CI
 * runner with an empty store gets the hits another runner produced; `type=local,dest=DIR` and
 * `type=local,src=DIR` do the same through a directory (cachebackend.ts). `mode=min` (the default, as in
 * BuildKit) exports the steps that made the final image; `mode=max` every step of every stage.
 * `mounts=true` carries RUN --mount=type=cache directories along.
 */
import fs from 'node:fs';
import zlib from 'node:zlib';
import type { SolverEvent, Vertex } from '../builder/index.js';
import { UsageError } from '../errors/index.js';
import { compressedLayer, openDecompressed } from '../image/index.js';
import { portableStepId, type RemoteCacheSource } from '../ops/index.js';
import { CACHE_MOUNT_TYPE, INLINE_CACHE_ANNOTATION, encodeInlineCache, parseReference, type RemoteCacheConfig, type RemoteRecord } from '../registry/index.js';
import { cacheMountDir, listCacheMounts, mountTar, restoreMount, type Store } from '../store/index.js';
import type { RegistryOptions } from './registry.js';
import { localBackend, registryBackend, type CacheBackend } from './cachebackend.js';

export interface CacheSpec {
  /** inline: on the image's own manifest (--cache-to only; read back with type=registry,ref=IMAGE). */
  type: 'registry' | 'local' | 'inline';
  /** The registry reference, or the directory (dest= for --cache-to, src= for --cache-from). */
  ref: string;
  mode: 'min' | 'max';
  mounts: boolean;
}

export function parseCacheSpecs(values: string[], flag: string): CacheSpec[] {
  return values.map((v) => {
    const kv = new Map<string, string>();
    for (const part of v.split(',')) {
      const i = part.indexOf('=');
      if (i < 0) kv.set('ref', part);
      else kv.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
    }
    const type = kv.get('type') ?? 'registry';
    if (type === 'inline' && flag === '--cache-to') {
      for (const k of kv.keys()) if (k !== 'type' && k !== 'mode') throw new UsageError(`${flag} ${v}: type=inline takes no "${k}": the cache goes on the image's manifest, and is read back with --cache-from type=registry,ref=IMAGE`);
      if ((kv.get('mode') ?? 'min') !== 'min') throw new UsageError(`${flag} ${v}: type=inline carries mode=min only (the image's own layers), as BuildKit's; use type=registry,ref=… for mode=max`);
      return { type, ref: '', mode: 'min', mounts: false };
    }
    if (type === 'inline') throw new UsageError(`--cache-from type=inline: give the image instead, --cache-from type=registry,ref=IMAGE (its inline cache is read)`);
    if (type !== 'registry' && type !== 'local') throw new UsageError(`${flag} type=${type}: use type=registry,ref=… or type=local,${flag === '--cache-to' ? 'dest' : 'src'}=DIR (cache mounts alone: tsbuild cache export-mounts)`);
    const keys = type === 'registry' ? ['type', 'ref', 'mode', 'mounts'] : ['type', flag === '--cache-to' ? 'dest' : 'src', 'mode', 'mounts'];
    for (const k of kv.keys()) if (!keys.includes(k)) throw new UsageError(`${flag} ${v}: unknown option "${k}" for type=${type}`);
    const ref = type === 'registry' ? kv.get('ref') : kv.get(flag === '--cache-to' ? 'dest' : 'src');
    if (!ref) throw new UsageError(`${flag} ${v}: give ${type === 'registry' ? 'ref=REGISTRY/NAME:TAG' : `${flag === '--cache-to' ? 'dest' : 'src'}=DIRECTORY`}`);
    if (type === 'registry') parseReference(ref);
    const mode = kv.get('mode') ?? 'min';
    if (mode !== 'min' && mode !== 'max') throw new UsageError(`${flag} mode=${mode}: use min or max`);
    const mounts = kv.get('mounts') ?? 'false';
    if (mounts !== 'true' && mounts !== 'false') throw new UsageError(`${flag} mounts=${mounts}: use true or false`);
    return { type, ref, mode, mounts: mounts === 'true' };
  });
}

function backendOf(store: Store, spec: Pick<CacheSpec, 'type' | 'ref'>, ro: RegistryOptions, log: (l: string) => void, signal?: AbortSignal): CacheBackend {
  if (spec.type === 'inline') throw new UsageError('type=inline has no store of its own: it is on the image');
  return spec.type === 'local' ? localBackend(store, spec.ref) : registryBackend(store, spec.ref, ro, log, signal);
}

/** Reads every --cache-from config (missing ones are a note, not an error) into one record source. */
export async function importCaches(store: Store, specs: CacheSpec[], ro: RegistryOptions, o: { signal?: AbortSignal; log: (l: string) => void }): Promise<RemoteCacheSource | undefined> {
  const records = new Map<string, RemoteRecord>();
  const holders = new Map<string, CacheBackend>();
  const steps = new Map<string, { key: string; material: Record<string, string> }>();
  for (const spec of specs) {
    const t = backendOf(store, spec, ro, o.log, o.signal);
    const cfg = await t.readConfig();
    if (!cfg) {
      o.log(`cache ${t.label}: nothing there yet`);
      continue;
    }
    o.log(`cache ${t.label}: ${cfg.records.length} records, ${cfg.mounts.length} cache mounts`);
    for (const r of cfg.records) {
      if (records.has(r.key)) continue;
      records.set(r.key, r);
      if (r.layer && !holders.has(r.layer.descriptor.digest)) holders.set(r.layer.descriptor.digest, t);
    }
    for (const [id, s] of Object.entries(cfg.steps)) if (!steps.has(id)) steps.set(id, s);
    if (spec.mounts) await restoreMounts(store, t, cfg, { ...o, overwrite: false });
  }
  if (records.size === 0 && steps.size === 0) return undefined;
  return {
    lookup: (key) => records.get(key),
    lastStep: (id) => steps.get(id),
    async fetch(d, signal) {
      const owner = holders.get(d.digest);
      if (!owner) throw new Error(`internal: no cache source holds ${d.digest}`);
      await owner.fetch(d, signal);
    },
  };
}

async function restoreMounts(store: Store, t: CacheBackend, cfg: RemoteCacheConfig, o: { signal?: AbortSignal; log: (l: string) => void; overwrite: boolean }): Promise<number> {
  let n = 0;
  for (const m of cfg.mounts) {
    // A build restores only what the runner lacks; an explicit import replaces.
    if (!o.overwrite && fs.existsSync(cacheMountDir(store.root, m.id))) continue;
    await t.fetch(m.descriptor, o.signal);
    await restoreMount(store.root, m.id, openDecompressed(store.content.openBlob(m.descriptor.digest), 'gzip'));
    o.log(`cache mount ${m.id}: restored from ${t.label}`);
    n++;
  }
  return n;
}

async function mountEntries(store: Store): Promise<RemoteCacheConfig['mounts']> {
  const out: RemoteCacheConfig['mounts'] = [];
  for (const m of listCacheMounts(store.root)) {
    const blob = await store.content.writeBlob(mountTar(m.dir).pipe(zlib.createGzip({ level: 6 })) as AsyncIterable<Buffer>);
    out.push({ id: m.id, descriptor: { mediaType: CACHE_MOUNT_TYPE, digest: blob.digest, size: blob.size } });
  }
  return out;
}

/** `tsbuild cache export-mounts --output type=registry,ref=R`: only the cache mounts. */
export async function exportMountsToRegistry(store: Store, ref: string, ro: RegistryOptions, o: { signal?: AbortSignal; log: (l: string) => void }): Promise<number> {
  const cfg: RemoteCacheConfig = { version: 1, records: [], steps: {}, mounts: await mountEntries(store) };
  await registryBackend(store, ref, ro, o.log, o.signal).write(cfg);
  return cfg.mounts.length;
}

/** `tsbuild cache import-mounts --input type=registry,ref=R`: every mount there replaces the local one. */
export async function importMountsFromRegistry(store: Store, ref: string, ro: RegistryOptions, o: { signal?: AbortSignal; log: (l: string) => void }): Promise<number> {
  const t = registryBackend(store, ref, ro, o.log, o.signal);
  const cfg = await t.readConfig();
  if (!cfg) throw new UsageError(`there is no tsbuild cache at ${ref}: export one first with tsbuild cache export-mounts --output type=registry,ref=${ref}`);
  return restoreMounts(store, t, cfg, { ...o, overwrite: true });
}

/** The vertices whose results make up the final image: the root and its first-input chain. */
function finalChain(root: Vertex): Set<string> {
  const out = new Set<string>();
  for (let v: Vertex | undefined = root; v; v = v.inputs[0]) out.add(v.digest);
  return out;
}

/** The records (and step history) of the steps that made the final image (min) or of every step (max). */
async function cacheConfig(store: Store, mode: CacheSpec['mode'], events: Extract<SolverEvent, { type: 'cache' }>[], root: Vertex): Promise<RemoteCacheConfig> {
  const index = store.cache;
  const keep = mode === 'min' ? finalChain(root) : undefined;
  const cfg: RemoteCacheConfig = { version: 1, records: [], steps: {}, mounts: [] };
  const seen = new Set<string>();
  for (const e of events) {
    if (keep && !keep.has(e.vertex.digest)) continue;
    const stepId = e.vertex.meta['stepId'];
    if (typeof stepId === 'string') cfg.steps[portableStepId(stepId)] = { key: e.key, material: e.material };
    if (seen.has(e.key)) continue;
    seen.add(e.key);
    const rec = index.lookup(e.key);
    if (!rec) continue;
    const layer = rec.layer ? { diffID: rec.layer.diffID, descriptor: await compressedLayer(store.content, rec.layer, { type: 'gzip' }) } : null;
    cfg.records.push({ key: rec.key, snapshot: rec.snapshot, layer, description: rec.description, created: rec.created });
  }
  return cfg;
}

/** `--cache-to type=inline`: the annotation export puts on the image manifest. */
export async function inlineCacheAnnotation(store: Store, events: Extract<SolverEvent, { type: 'cache' }>[], root: Vertex): Promise<Record<string, string>> {
  return { [INLINE_CACHE_ANNOTATION]: encodeInlineCache(await cacheConfig(store, 'min', events, root)) };
}

export async function exportCache(store: Store, spec: CacheSpec, events: Extract<SolverEvent, { type: 'cache' }>[], root: Vertex, ro: RegistryOptions, o: { signal?: AbortSignal; log: (l: string) => void }): Promise<void> {
  if (spec.type === 'inline') return;
  const cfg = await cacheConfig(store, spec.mode, events, root);
  if (spec.mounts) cfg.mounts = await mountEntries(store);
  const t = backendOf(store, spec, ro, o.log, o.signal);
  await t.write(cfg);
  o.log(`cache exported to ${t.label}: ${cfg.records.length} records (mode=${spec.mode})${spec.mounts ? `, ${cfg.mounts.length} cache mounts` : ''}`);
}
