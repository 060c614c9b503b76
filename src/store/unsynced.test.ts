/**
 * Snapshots committed without a sync are settled by the sweep: this boot's are synced once old
 * enough, an earlier boot's are removed with what was built on them, unless a container stands on
 * them or a running command holds them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NativeSnapshotter, removeAllSnapshots } from '../snapshotter/index.js';
import { bootId } from '../fsutil/index.js';
import { tmpdir } from '../testutil/index.js';
import { openLease } from './leases.js';
import { settledMessages, settleUnsynced, UNSYNCED_LABEL, unsyncedLabels } from './unsynced.js';
import { recoverStore } from './recovery.js';

async function keys(sn: NativeSnapshotter): Promise<string[]> {
  const out: string[] = [];
  await sn.walk((i) => void out.push(i.key));
  return out.sort();
}

async function committed(sn: NativeSnapshotter, name: string, parent: string | undefined, labels: Record<string, string> = {}): Promise<void> {
  await sn.prepare(`tmp-${name}`, parent);
  await sn.commit(name, `tmp-${name}`, labels);
}

async function withStore(fn: (root: string, sn: NativeSnapshotter) => Promise<void>): Promise<void> {
  const root = tmpdir('tsb-unsynced-');
  const sn = new NativeSnapshotter(path.join(root, 'snapshots', 'native'));
  try {
    await fn(root, sn);
  } finally {
    await removeAllSnapshots(sn);
    await sn.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

const earlier = { [UNSYNCED_LABEL]: 'an-earlier-boot' };

test('an unpack commits with the boot it was written in', () => {
  assert.equal(unsyncedLabels(), { [UNSYNCED_LABEL]: bootId() });
});

test('an earlier boot: the snapshot goes with every committed one built on it; others stay', async () => {
  await withStore(async (root, sn) => {
    await committed(sn, 'base', undefined, earlier);
    await committed(sn, 'layer2', 'base', earlier);
    await committed(sn, 'built', 'layer2');
    await committed(sn, 'other', undefined);
    await committed(sn, 'synced', undefined, { [UNSYNCED_LABEL]: bootId() });
    const r = await settleUnsynced(root, sn, { now: Date.now() });
    assert.equal(r.dropped, ['built', 'layer2', 'base'], 'children before parents');
    assert.equal(r.kept, []);
    assert.equal(await keys(sn), ['other', 'synced']);
    assert.is(settledMessages(r).length, 1);
    assert.match(settledMessages(r)[0]!, /removed 3 snapshot\(s\) .* before this machine restarted/);
  });
});

test('an earlier boot under a container: kept, marked still, and reported with the container', async () => {
  await withStore(async (root, sn) => {
    await committed(sn, 'base', undefined, earlier);
    await sn.prepare('ctr-layer', 'base', { 'tsbuild.container': 'c0ffee1234567890' });
    const r = await settleUnsynced(root, sn);
    assert.equal(r.dropped, []);
    assert.equal(r.kept, [{ key: 'base', by: 'container c0ffee123456' }]);
    assert.equal((await sn.stat('base')).labels, earlier, 'reported again by the next sweep');
    assert.match(settledMessages(r)[0]!, /warning: snapshot base .* container c0ffee123456 stands on it: remove that container/);
    await sn.remove('ctr-layer');
  });
});

test('an earlier boot held by a running command: left for the next sweep, unreported', async () => {
  await withStore(async (root, sn) => {
    await committed(sn, 'base', undefined, earlier);
    const lease = openLease(root);
    try {
      lease.hold(['base']);
      const r = await settleUnsynced(root, sn);
      assert.equal([r.dropped, r.kept], [[], []]);
      assert.equal(await keys(sn), ['base']);
    } finally {
      lease.close();
    }
    assert.equal((await settleUnsynced(root, sn)).dropped, ['base']);
    await committed(sn, 'base2', undefined, earlier);
    await sn.prepare(`active-${process.pid}-unpack-1`, 'base2');
    const r = await settleUnsynced(root, sn);
    assert.equal([r.dropped, r.kept], [[], []], 'a running command\'s own active snapshot on it');
    await sn.remove(`active-${process.pid}-unpack-1`);
  });
});

test('this boot: synced and unmarked a minute after it was written, left marked before', async () => {
  await withStore(async (root, sn) => {
    await committed(sn, 'old', undefined, { ...unsyncedLabels(), keep: 'me' });
    const created = Date.parse((await sn.stat('old')).created);
    await committed(sn, 'fresh', undefined, unsyncedLabels());
    const r = await settleUnsynced(root, sn, { now: created + 61_000 });
    assert.is(r.synced, 2, 'both are a minute old by then');
    assert.equal((await sn.stat('old')).labels, { keep: 'me' });
    await committed(sn, 'newer', undefined, unsyncedLabels());
    const r2 = await settleUnsynced(root, sn, { now: Date.now() });
    assert.equal([r2.synced, r2.dropped], [0, []]);
    assert.equal((await sn.stat('newer')).labels, unsyncedLabels());
    assert.equal(settledMessages(r2), []);
  });
});

test('a sync that fails leaves the marks for the next sweep and says why; the sweep goes on', async () => {
  await withStore(async (root, sn) => {
    await committed(sn, 'old', undefined, unsyncedLabels());
    const created = Date.parse((await sn.stat('old')).created);
    const bin = path.join(root, 'bin');
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, 'sync'), '#!/bin/sh\necho "sync: input/output error" >&2\nexit 1\n', { mode: 0o755 });
    const saved = process.env.PATH;
    process.env.PATH = bin;
    let r;
    try {
      r = await settleUnsynced(root, sn, { now: created + 61_000 });
    } finally {
      process.env.PATH = saved;
    }
    assert.is(r.synced, 0);
    assert.match(r.syncFailed ?? '', /input\/output error/);
    assert.equal((await sn.stat('old')).labels, unsyncedLabels());
    assert.match(settledMessages(r)[0]!, /warning: .*input\/output error; unpacked layers stay marked unsynced/);
    assert.is((await settleUnsynced(root, sn, { now: created + 61_000 })).synced, 1, 'the next sweep syncs them');
  });
});

test('the recovery sweep settles them', async () => {
  await withStore(async (root, sn) => {
    await committed(sn, 'base', undefined, earlier);
    const r = await recoverStore(root, sn);
    assert.equal(r.dropped, ['base']);
    assert.equal(await keys(sn), []);
  });
});

test.run();
