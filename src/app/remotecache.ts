/**
 * `--cache-to type=registry,ref=R[,mode=min|max][,mounts=true]` and
 * `--cache-from type=registry,ref=R[,mounts=true]`: build cache shared through a registry, so a CI
 * runner with an empty store gets the hits another runner produced. `mode=min` (the default, as in
 * BuildKit) exports the steps that made the final image; `mode=max` every step of every stage.
 * `mounts=true` carries RUN --mount=type=cache directories along.
 */
import fs from 'node:fs';
import zlib from 'node:zlib';
import type { SolverEvent, Vertex } from '../builder/index.js';
import { UsageError } from '../errors/index.js';
import { compressedLayer, openDecompressed } from '../image/index.js';
import { portableStepId, type RemoteCacheSource } from '../ops/index.js';
import { CACHE_MOUNT_TYPE, fetchBlob, parseReference, pullCacheConfig, pushCache, type RemoteCacheConfig, type RemoteRecord } from '../registry/index.js';
import { cacheMountDir, listCacheMounts, mountTar, restoreMount, type Store } from '../store/index.js';
import { registryClient, transferLogger, type RegistryOptions } from './registry.js';

export interface CacheSpec {
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
    if (type !== 'registry') throw new UsageError(`${flag} type=${type}: only type=registry is supported (cache mounts to a directory: tsbuild cache export-mounts)`);
    for (const k of kv.keys()) if (!['type', 'ref', 'mode', 'mounts'].includes(k)) throw new UsageError(`${flag} ${v}: unknown option "${k}"`);
    const ref = kv.get('ref');
    if (!ref) throw new UsageError(`${flag} ${v}: give ref=REGISTRY/NAME:TAG`);
    parseReference(ref);
    const mode = kv.get('mode') ?? 'min';
    if (mode !== 'min' && mode !== 'max') throw new UsageError(`${flag} mode=${mode}: use min or max`);
    const mounts = kv.get('mounts') ?? 'false';
    if (mounts !== 'true' && mounts !== 'false') throw new UsageError(`${flag} mounts=${mounts}: use true or false`);
    return { ref, mode, mounts: mounts === 'true' };
  });
}

function transfer(store: Store, ref: string, ro: RegistryOptions, log: (l: string) => void, signal?: AbortSignal) {
  const r = parseReference(ref);
  return { client: registryClient(r.domain, ro, store.root, log), ref: r, store: store.content, signal, sources: store.blobSources };
}

/** Reads every --cache-from config (missing ones are a note, not an error) into one record source. */
export async function importCaches(store: Store, specs: CacheSpec[], ro: RegistryOptions, o: { signal?: AbortSignal; log: (l: string) => void }): Promise<RemoteCacheSource | undefined> {
  const records = new Map<string, RemoteRecord>();
  const holders = new Map<string, ReturnType<typeof transfer>>();
  const steps = new Map<string, { key: string; material: Record<string, string> }>();
  for (const spec of specs) {
    const t = transfer(store, spec.ref, ro, o.log, o.signal);
    const cfg = await pullCacheConfig(t);
    if (!cfg) {
      o.log(`cache ${spec.ref}: nothing there yet`);
      continue;
    }
    o.log(`cache ${spec.ref}: ${cfg.records.length} records, ${cfg.mounts.length} cache mounts`);
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
      await fetchBlob(owner.client, owner.ref.path, d, store.content, { signal });
    },
  };
}

async function restoreMounts(store: Store, t: ReturnType<typeof transfer>, cfg: RemoteCacheConfig, o: { signal?: AbortSignal; log: (l: string) => void; overwrite: boolean }): Promise<number> {
  let n = 0;
  for (const m of cfg.mounts) {
    // A build restores only what the runner lacks; an explicit import replaces.
    if (!o.overwrite && fs.existsSync(cacheMountDir(store.root, m.id))) continue;
    await fetchBlob(t.client, t.ref.path, m.descriptor, store.content, { signal: o.signal });
    await restoreMount(store.root, m.id, openDecompressed(store.content.openBlob(m.descriptor.digest), 'gzip'));
    o.log(`cache mount ${m.id}: restored from ${t.client.domain}/${t.ref.path}`);
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
  await pushCache({ ...transfer(store, ref, ro, o.log, o.signal), onEvent: transferLogger(o.log) }, cfg);
  return cfg.mounts.length;
}

/** `tsbuild cache import-mounts --input type=registry,ref=R`: every mount there replaces the local one. */
export async function importMountsFromRegistry(store: Store, ref: string, ro: RegistryOptions, o: { signal?: AbortSignal; log: (l: string) => void }): Promise<number> {
  const t = transfer(store, ref, ro, o.log, o.signal);
  const cfg = await pullCacheConfig(t);
  if (!cfg) throw new UsageError(`there is no tsbuild cache at ${ref}: export one first with tsbuild cache export-mounts --output type=registry,ref=${ref}`);
  return restoreMounts(store, t, cfg, { ...o, overwrite: true });
}

/** The vertices whose results make up the final image: the root and its first-input chain. */
function finalChain(root: Vertex): Set<string> {
  const out = new Set<string>();
  for (let v: Vertex | undefined = root; v; v = v.inputs[0]) out.add(v.digest);
  return out;
}

export async function exportCache(store: Store, spec: CacheSpec, events: Extract<SolverEvent, { type: 'cache' }>[], root: Vertex, ro: RegistryOptions, o: { signal?: AbortSignal; log: (l: string) => void }): Promise<void> {
  const index = store.cache;
  const keep = spec.mode === 'min' ? finalChain(root) : undefined;
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
  if (spec.mounts) cfg.mounts = await mountEntries(store);
  const t = transfer(store, spec.ref, ro, o.log, o.signal);
  await pushCache({ ...t, onEvent: transferLogger(o.log) }, cfg);
  o.log(`cache exported to ${spec.ref}: ${cfg.records.length} records (mode=${spec.mode})${spec.mounts ? `, ${cfg.mounts.length} cache mounts` : ''}`);
}
