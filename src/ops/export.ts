/** Export: the final state's layers plus the planned config become an OCI config, manifest and names. */
import { MediaType, type ImageConfig, type Manifest } from '../image/index.js';
import type { ExportRef, OpSpec, OpsEnv, StateRef } from './types.js';

/** Go's json.Marshal escapes <, > and & in strings; Docker configs do too, so digests match theirs. */
export function canonicalJSON(v: unknown): string {
  return JSON.stringify(v).replace(/[<>&]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

export async function exportOp(env: OpsEnv, op: Extract<OpSpec, { kind: 'export' }>, state: StateRef): Promise<ExportRef> {
  const config: ImageConfig = {
    created: env.created,
    ...op.config,
    rootfs: { type: 'layers', diff_ids: state.layers.map((l) => l.diffID) },
    history: [...state.history, ...op.history],
  };
  const cfgText = canonicalJSON(config);
  const cfg = await env.store.writeBlob(Buffer.from(cfgText));
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.manifest,
    config: { mediaType: MediaType.config, digest: cfg.digest, size: cfg.size },
    layers: state.layers.map((l) => l.descriptor),
  };
  const man = await env.store.writeBlob(Buffer.from(canonicalJSON(manifest)));
  const desc = { mediaType: MediaType.manifest, digest: man.digest, size: man.size, platform: { architecture: config.architecture, os: config.os } };
  for (const n of op.names) env.store.tag(n, desc);
  if (op.names.length === 0) env.store.addDangling(desc);
  return { kind: 'export', manifest: desc, configDigest: cfg.digest };
}
