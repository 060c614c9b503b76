/** The same Dockerfile on every available snapshotter gives the same image digest, and runs. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { cli, e2eHarness, makeBtrfs, removeStore, sandboxUnavailable } from '../testutil/index.js';
import { openSnapshotter, removeAllSnapshots } from '../snapshotter/index.js';

const { it, itUnless, root, ctx } = e2eHarness('snap');
// A loop-mounted btrfs for the btrfs part, made once; its reason is the skip's when it cannot be made.
const fsys = sandboxUnavailable() ? undefined : makeBtrfs();
const btrfsWhy = fsys && 'unavailable' in fsys ? fsys.unavailable : undefined;
test.after(() => {
  if (fsys && !('unavailable' in fsys)) fsys.dispose();
});
let shared: { d: string; id: string } | undefined;

it('overlayfs and native build identical images (layers and digest) and both run them', async () => {
  const d = ctx(
    'RUN mkdir -p /data/keep && echo a > /data/keep/a && echo b > /data/gone && ln -s keep/a /data/link\n' +
      'FROM base AS mid\nRUN rm /data/gone && echo c >> /data/keep/a && chmod 0700 /data/keep\nCOPY one.txt /data/one\nWORKDIR /w\n' +
      'FROM mid AS final\nCOPY --from=base /data/keep/a /copied\nENV X=1\nCMD ["sh", "-c", "cat /data/keep/a /data/one /copied; ls /data"]\n',
    { 'one.txt': '1\n' },
  );
  const ids: string[] = [];
  for (const driver of ['overlayfs', 'native']) {
    const r = await cli(['-q', '--snapshotter', driver, '-t', `snap-${driver}`, d], { root });
    assert.is(r.code, 0, `${driver}: ${r.stderr}`);
    ids.push(r.stdout.trim());
    const out = await cli(['run', '--rm', '--snapshotter', driver, `snap-${driver}`], { root });
    assert.is(out.stdout, 'a\nc\n1\na\nkeep\nlink\none\n', `${driver} runs the image`);
  }
  assert.is(ids[0], ids[1], 'the same image id on both drivers');
  shared = { d, id: ids[0]! };

  const bad = await cli(['--snapshotter', 'ceph', d], { root });
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /unknown snapshotter "ceph": this build supports overlayfs, native, btrfs, zfs/);
  const nozfs = await cli(['--snapshotter', 'zfs', d], { root });
  assert.is(nozfs.code, 1);
  assert.match(nozfs.stderr, /zfs/, 'zfs without zfs is a clear error');
});

itUnless(btrfsWhy, 'btrfs builds the same image id as overlayfs and native, and runs it', async () => {
  assert.ok(shared, 'the overlayfs/native test ran first');
  const { d, id } = shared;
  const broot = path.join((fsys as { dir: string }).dir, 'store');
  try {
    const r = await cli(['-q', '--snapshotter', 'btrfs', '-t', 'snap-btrfs', d], { root: broot });
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout.trim(), id, 'btrfs gives the same image id too');
    const out = await cli(['run', '--rm', '--snapshotter', 'btrfs', 'snap-btrfs'], { root: broot });
    assert.is(out.stdout, 'a\nc\n1\na\nkeep\nlink\none\n');
    assert.is((await cli(['rmi', 'snap-btrfs'], { root: broot })).code, 0);
  } finally {
    // subvolumes are removed by the driver; what is left is plain files
    try {
      await removeAllSnapshots(openSnapshotter(broot, 'btrfs'));
    } catch {
      // the store may not have been created
    }
    removeStore(broot);
  }
});

it('info shows the drivers; config.json picks the store-wide default snapshotter', async () => {
  const info = JSON.parse((await cli(['info', '--format', 'json'], { root })).stdout) as { snapshotter: string; drivers: Record<string, string> };
  assert.is(info.snapshotter, 'overlayfs');
  assert.is(info.drivers['overlayfs'], 'available');
  assert.match(info.drivers['zfs']!, /^unavailable: |available when/);
  const other = path.join(root, 'native-default');
  fs.mkdirSync(other, { recursive: true });
  fs.writeFileSync(path.join(other, 'config.json'), JSON.stringify({ snapshotter: 'native' }));
  const d = ctx('FROM base AS n\nRUN echo x > /x\n');
  const r = await cli(['-t', 'by-config', '--target', 'n', '--progress', 'plain', d], { root: other });
  assert.is(r.code, 0, r.stderr);
  assert.ok(fs.existsSync(path.join(other, 'snapshots/native/metadata.json')), 'built with the native driver');
  assert.is((await cli(['run', '--rm', 'by-config', 'cat', '/x'], { root: other })).stdout, 'x\n');
  assert.match((await cli(['info'], { root: other })).stdout, /Snapshotter: +native/);
});

test.run();
