/**
 * Unpacking stored layers into snapshots: a damaged blob is an error that names it, whenever the damage
 * is found, and leaves no half-made snapshot.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MediaType } from '../image/index.js';
import { removeStore, sandboxUnavailable, tarOf, tmpdir } from '../testutil/index.js';
import { openStore } from './store.js';
import { unpackLayers } from './unpack.js';

const sha = (b: Buffer) => `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;
const why = sandboxUnavailable();
const it = why ? (name: string, _fn: () => Promise<void>) => test.skip(`${name} (skipped: ${why})`) : test;

it('a stored blob that no longer matches its digest, on a parent: the unpack fails naming it, nothing is left half made', async () => {
  const root = tmpdir('tsb-unpack-');
  try {
    const store = await openStore(root);
    const env = { storeRoot: root, store: store.content, snapshotter: store.snapshotter };
    const blobs = path.join(root, 'blobs', 'sha256');
    fs.mkdirSync(blobs, { recursive: true });
    const layer = (b: Buffer) => {
      fs.writeFileSync(path.join(blobs, sha(b).slice(7)), b);
      return { diffID: sha(b), descriptor: { mediaType: MediaType.layer, digest: sha(b), size: b.length } };
    };
    const base = layer(tarOf([{ name: 'a', body: 'a' }]));
    const damaged = layer(tarOf([{ name: 'b', body: 'b' }]));
    fs.writeFileSync(path.join(blobs, damaged.descriptor.digest.slice(7)), 'not a tar');
    const crashes: unknown[] = [];
    const onCrash = (e: unknown) => crashes.push(e);
    process.on('uncaughtException', onCrash);
    try {
      const top = await unpackLayers(env, [base]);
      // The damage is read while the parent's overlay is mounted for it: the stream's error came
      // before anything listened, and ended the process.
      const e = await unpackLayers(env, [base, damaged]).then(() => undefined, (x: unknown) => x);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(crashes, [], 'no error without a listener');
      assert.is((e as { code?: string } | undefined)?.code, 'BLOB_CORRUPT', String(e));
      assert.match(String((e as Error).message), new RegExp(`blob ${damaged.descriptor.digest} in the store is corrupt`));
      const left: string[] = [];
      await store.snapshotter.walk((i) => void left.push(`${i.kind} ${i.key}`));
      assert.equal(left, [`committed ${top}`], 'the parent only');
    } finally {
      process.off('uncaughtException', onCrash);
    }
  } finally {
    removeStore(root);
  }
});

it('a layer stream that fails before the unpack reads it (a download that breaks at once) is the unpack\'s error, not the process\'s', async () => {
  const root = tmpdir('tsb-unpack-');
  try {
    const store = await openStore(root);
    const env = { storeRoot: root, store: store.content, snapshotter: store.snapshotter };
    const b = tarOf([{ name: 'a', body: 'a' }]);
    const l = { diffID: sha(b), descriptor: { mediaType: MediaType.layer, digest: sha(b), size: b.length } };
    const crashes: unknown[] = [];
    const onCrash = (e: unknown) => crashes.push(e);
    process.on('uncaughtException', onCrash);
    try {
      const source = {
        open: () => {
          const r = new Readable({ read() {} });
          process.nextTick(() => r.destroy(Object.assign(new Error('connection reset'), { code: 'ECONNRESET' })));
          return r;
        },
        complete: async () => undefined,
      };
      const e = await unpackLayers(env, [l], { source }).then(() => undefined, (x: unknown) => x);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(crashes, [], 'no error without a listener');
      assert.match(String(e), /connection reset/);
      const left: string[] = [];
      await store.snapshotter.walk((i) => void left.push(i.key));
      assert.equal(left, [], 'nothing half made');
    } finally {
      process.off('uncaughtException', onCrash);
    }
  } finally {
    removeStore(root);
  }
});

test.run();
