/**
 * What the registry end-to-end files share: a store and contexts (e2eHarness), a plain registry on
 * 127.0.0.1 started once per file, fresh stores for pull tests, a DOCKER_CONFIG of their own, skopeo.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cli, e2eHarness, readJSON, registryUnavailable, removeStore, startRegistry, tmpdir, type TestRegistry } from '../testutil/index.js';

export function registryFixture(prefix: string) {
  const h = e2eHarness(prefix);
  const why = registryUnavailable();
  const it = why ? (name: string, _fn: () => Promise<void>) => test.skip(`${name} (skipped: ${why})`) : h.it;
  const { root, ctx } = h;
  const dockerConfig = tmpdir('tsb-reg-docker-');
  const env = { DOCKER_CONFIG: dockerConfig, TSBUILD_REGISTRY_RETRY_MS: '10', TSBUILD_PULL: 'missing' };
  const stores: string[] = [];
  const state: { plain?: TestRegistry } = {};
  test.before(async () => {
    if (!why && !process.env.TSBUILD_SKIP_SANDBOX) state.plain = await startRegistry();
  });
  test.after(async () => {
    await state.plain?.stop();
    for (const s of stores) removeStore(s);
    fs.rmSync(dockerConfig, { recursive: true, force: true });
  });
  const newStore = (): string => {
    const s = tmpdir('tsb-reg-store-');
    stores.push(s);
    return s;
  };
  const skopeo = (args: string[]): { code: number; out: string } => {
    const r = spawnSync('skopeo', args, { encoding: 'utf8' });
    if (r.error) throw new Error('skopeo is not installed');
    return { code: r.status ?? 1, out: (r.stdout ?? '') + (r.stderr ?? '') };
  };
  const buildHello = async (tag: string, extra = ''): Promise<string> => {
    const d = ctx(`COPY greeting.txt /greeting.txt\n${extra}CMD ["cat", "/greeting.txt"]\n`, { 'greeting.txt': `hello ${tag}\n` });
    const r = await cli(['-q', '-t', tag, d], { root, env });
    assert.is(r.code, 0, r.stderr);
    return r.stdout.trim();
  };
  const storeManifest = (store: string, name: string): { layers: { digest: string; size: number; mediaType: string }[]; config: { digest: string } } => {
    const idx = readJSON<{ manifests: { digest: string; annotations?: Record<string, string> }[] }>(path.join(store, 'index.json'));
    const m = idx.manifests.find((x) => x.annotations?.['org.opencontainers.image.ref.name'] === name);
    assert.ok(m, `${name} in ${store}`);
    return readJSON(path.join(store, 'blobs/sha256', m!.digest.slice(7)));
  };
  return { h, it, root, ctx, env, dockerConfig, newStore, skopeo, buildHello, storeManifest, registry: () => state.plain! };
}
