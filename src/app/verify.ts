/**
 * `verify IMAGE`: rebuilds an image from its recorded inputs (context, Dockerfile, target, build
 * args, network, SOURCE_DATE_EPOCH) with the cache off, and says whether the manifest digest matches.
 */
import fs from 'node:fs';
import { NotFoundError, TsbuildError } from '../errors/index.js';
import type { Store } from '../store/index.js';
import { build } from './build.js';
import { readInputs } from './inputs.js';
import type { OpOptions } from './events.js';

export interface VerifyResult {
  same: boolean;
  /** The image's manifest digest. */
  expected: string;
  /** The rebuild's. */
  rebuilt: string;
}

/**
 * Every stored blob of the image (manifest, config, layers) hashed against its digest: the first
 * that does not match is thrown, naming the blob and its file.
 */
export async function checkImageBlobs(store: Store, ref: string): Promise<number> {
  const img = store.content.resolve(ref);
  const digests = [img.manifestDigest, img.manifest.config.digest, ...img.manifest.layers.map((l) => l.digest)];
  for (const d of digests) {
    const bad = await store.content.checkBlob(d);
    if (bad) throw bad;
  }
  return digests.length;
}

export async function verify(store: Store, ref: string, o: OpOptions = {}): Promise<VerifyResult> {
  const img = store.content.resolve(ref);
  // A rebuild that matches says nothing about the bytes on disk: they are checked first.
  await checkImageBlobs(store, ref);
  const inputs = readInputs(store.root, img.manifestDigest);
  if (!inputs) throw new NotFoundError(`no recorded build inputs for ${ref}: only images built by tsbuild on this store can be verified`, 'NO_BUILD_INPUTS');
  if (!fs.existsSync(inputs.dockerfile)) throw new TsbuildError('VERIFY_INPUT_GONE', `the Dockerfile ${inputs.dockerfile} used to build ${ref} is gone`);
  const out = await build(
    store,
    {
      context: inputs.context,
      dockerfile: inputs.dockerfile,
      target: inputs.target,
      buildArgs: inputs.buildArgs,
      buildContexts: inputs.buildContexts,
      network: inputs.network === 'none' || inputs.network === 'default' ? inputs.network : 'host',
      noCache: true,
      labels: inputs.labels,
      // The platform it was built for (one entry of a multi-platform image: the entry resolved).
      platform: inputs.platform,
      sourceDateEpoch: inputs.sourceDateEpoch !== undefined ? parseInt(inputs.sourceDateEpoch, 10) : undefined,
    },
    o,
  );
  return { same: out.manifestDigest === img.manifestDigest, expected: img.manifestDigest, rebuilt: out.manifestDigest };
}
