/**
 * What a restart of the machine does to build steps: their snapshots are written without a sync and
 * committed with the boot they were written in; after a restart the cache unpacks them again from
 * their layer blobs instead of running the steps.
 */
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { asIfRestarted, cli, executedSteps as executed, removeStore, snapshotTable, tmpdir, e2eHarness } from '../testutil/index.js';

const { it, ctx } = e2eHarness('restart');

it('build steps are committed unsynced with their boot; after a restart the cache unpacks them again from their layers: nothing runs, the same image', async () => {
  const store = tmpdir('tsb-cache-reboot-');
  try {
    const d = ctx('RUN head -c 16 /dev/urandom | od -x > /rand\nCOPY f.txt /f.txt\nWORKDIR /w\nRUN cat /rand /f.txt > /both\n', { 'f.txt': 'f' });
    const b1 = await cli(['--progress', 'plain', '-t', 'rb', d], { root: store });
    assert.is(b1.code, 0, b1.stderr);
    const id = (await cli(['inspect', '-f', '{{.Id}}', 'rb'], { root: store })).stdout;
    const before = await cli(['run', '--rm', 'rb', 'cat', '/both'], { root: store });
    assert.is(before.code, 0, before.stderr);
    const read = () => snapshotTable(store);
    const boot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const steps = Object.entries(read().snapshots).filter(([, r]) => r.kind === 'committed');
    // COPY busybox (on scratch), RUN --install, RUN head, COPY f.txt, WORKDIR, RUN cat.
    assert.is(steps.length, 6, JSON.stringify(read()));
    for (const [k, r] of steps) assert.is(r.labels['tsbuild.unsynced-boot'], boot, k);
    asIfRestarted(store);
    const b2 = await cli(['--progress', 'plain', '-t', 'rb', d], { root: store });
    assert.is(b2.code, 0, b2.stderr);
    assert.match(b2.stderr, /removed 6 snapshot\(s\) unpacked or built before this machine restarted/);
    assert.equal(executed(b2.stderr), [], `nothing runs again:\n${b2.stderr}`);
    assert.is(b2.stderr.match(/cached layer unpacked again/g)?.length, 6, b2.stderr);
    assert.is((await cli(['inspect', '-f', '{{.Id}}', 'rb'], { root: store })).stdout, id, 'the same image');
    const after = await cli(['run', '--rm', 'rb', 'cat', '/both'], { root: store });
    assert.is(after.stdout, before.stdout, 'the same files');
    for (const [k, r] of Object.entries(read().snapshots)) if (r.kind === 'committed') assert.is(r.labels['tsbuild.unsynced-boot'], boot, k);
    // A layer blob that is gone (or does not unpack) is a miss: the step runs.
    asIfRestarted(store);
    const rec = fs.readdirSync(path.join(store, 'cache', 'records')).map((f) => JSON.parse(fs.readFileSync(path.join(store, 'cache', 'records', f), 'utf8')) as { description: string; layer?: { descriptor: { digest: string } } }).find((r) => r.description.includes('COPY f.txt'));
    assert.ok(rec?.layer, 'the COPY has a layer');
    const blob = path.join(store, 'blobs', 'sha256', rec.layer.descriptor.digest.slice(7));
    fs.writeFileSync(blob, 'not a tar');
    const b3 = await cli(['--progress', 'plain', '-t', 'rb', d], { root: store });
    assert.is(b3.code, 0, b3.stderr);
    assert.match(b3.stderr, /the cached layer did not unpack/);
    assert.ok(executed(b3.stderr).some((s) => s.includes('COPY f.txt')), b3.stderr);
  } finally {
    removeStore(store);
  }
});


test.run();
