/** Export: the final state's layers plus the planned config become an OCI config, manifest and names. */
import { TsbuildError } from '../errors/index.js';
import { MediaType, configPlatform, type ImageConfig, type Manifest } from '../image/index.js';
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
  const annotations = { ...env.annotations, ...(await env.inlineCache?.()) };
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.manifest,
    config: { mediaType: MediaType.config, digest: cfg.digest, size: cfg.size },
    layers: state.layers.map((l) => l.descriptor),
    ...(Object.keys(annotations).length ? { annotations } : {}),
  };
  checkBudgets(env.budgets, manifest, config);
  const man = await env.store.writeBlob(Buffer.from(canonicalJSON(manifest)));
  const desc = { mediaType: MediaType.manifest, digest: man.digest, size: man.size, platform: configPlatform(config) };
  for (const n of op.names) env.store.tag(n, desc);
  if (op.names.length === 0) env.store.addDangling(desc);
  return { kind: 'export', manifest: desc, configDigest: cfg.digest };
}

const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

/** Size budgets, checked before the image gets its names, naming the step that broke one. */
export function checkBudgets(b: OpsEnv['budgets'], manifest: Manifest, config: ImageConfig): void {
  if (!b) return;
  const steps = (config.history ?? []).filter((h) => !h.empty_layer).map((h) => h.created_by ?? 'a base image layer');
  const fix = 'make the step smaller (remove what it downloads or builds in the same RUN, use a cache mount, a .dockerignore) or raise the budget';
  manifest.layers.forEach((l, i) => {
    if (b.maxLayer !== undefined && l.size > b.maxLayer) {
      throw new TsbuildError('SIZE_BUDGET', `the layer made by ${JSON.stringify(steps[i] ?? '?')} is ${mib(l.size)}, over --max-layer-size ${mib(b.maxLayer)}: ${fix}`);
    }
  });
  const total = manifest.layers.reduce((a, l) => a + l.size, 0);
  if (b.maxImage !== undefined && total > b.maxImage) {
    const big = manifest.layers.map((l, i) => ({ size: l.size, step: steps[i] ?? '?' })).sort((x, y) => y.size - x.size)[0];
    throw new TsbuildError('SIZE_BUDGET', `the image is ${mib(total)}, over --max-image-size ${mib(b.maxImage)}; its biggest layer (${mib(big?.size ?? 0)}) is made by ${JSON.stringify(big?.step)}: ${fix}`);
  }
}
