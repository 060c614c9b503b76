/**
 * The conformance suite every snapshotter driver must pass, driven by a factory. Covers the lifecycle
 * rules, file content and metadata through commit chains (modes, owners, symlinks, hardlinks, xattrs,
 * deletions and replaced directories), deep chains, concurrent use, and crash cleanup.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { programUnavailable, withMountedData } from '../testutil/index.js';
import { SnapshotError } from './errors.js';
import { removeAllSnapshots } from './base.js';
import type { Snapshotter } from './types.js';

export interface SuiteOptions {
  name: string;
  /** Why the driver cannot run here, or undefined. */
  unavailable?: string;
  create(root: string): Snapshotter;
  /** A scratch directory on a filesystem the driver supports. */
  tmpRoot(): string;
  /** Directory under which driver metadata lives, for the crash test. */
  storeDir(root: string): string;
  /** Runs once after the suite (e.g. unmounting a test filesystem). */
  teardown?(): void;
}

async function rejects(p: Promise<unknown>, code: string): Promise<void> {
  const e = await p.then(() => undefined, (x: unknown) => x);
  assert.ok(e instanceof SnapshotError, `expected SnapshotError ${code}, got ${String(e)}`);
  assert.is((e as SnapshotError).code, code);
}

export function snapshotterSuite(o: SuiteOptions): void {
  const s = suite(`snapshotter ${o.name}`);
  if (o.unavailable) {
    s.skip(`${o.name} (skipped: ${o.unavailable})`, () => undefined);
    s.run();
    return;
  }
  const xattrWhy = programUnavailable('setfattr', ['--version'], 'attr');
  if (xattrWhy) s.skip(`${o.name}: xattrs survive a commit chain (skipped: ${xattrWhy})`, () => undefined);
  let root = '';
  let sn: Snapshotter;
  s.after(() => o.teardown?.());
  s.before.each(() => {
    root = o.tmpRoot();
    sn = o.create(root);
  });
  s.after.each(async () => {
    // Through the driver, children first: a read-only btrfs subvolume, for one, cannot be emptied by rm.
    await removeAllSnapshots(sn);
    await sn.close();
    fs.rmSync(root, { recursive: true, force: true });
  });
  const write = async (key: string, fn: (dir: string) => void) => withMountedData(await sn.mounts(key), path.join(root, `mnt-${Math.random()}`), fn);
  const read = async <T>(parent: string, fn: (dir: string) => T): Promise<T> => {
    const key = `view-${Math.random()}`;
    const m = await sn.view(key, parent);
    try {
      return await withMountedData(m, path.join(root, `mnt-${Math.random()}`), fn);
    } finally {
      await sn.remove(key);
    }
  };

  s('lifecycle: prepare, commit, stat, walk, remove', async () => {
    await sn.prepare('a');
    assert.is((await sn.stat('a')).kind, 'active');
    await write('a', (d) => fs.writeFileSync(path.join(d, 'f'), 'x'));
    await sn.commit('A', 'a');
    assert.is((await sn.stat('A')).kind, 'committed');
    await rejects(sn.stat('a'), 'SNAPSHOT_NOT_FOUND');
    await sn.prepare('b', 'A');
    assert.is((await sn.stat('b')).parent, 'A');
    const keys: string[] = [];
    await sn.walk((i) => void keys.push(i.key));
    assert.equal(keys.sort(), ['A', 'b']);
    await rejects(sn.remove('A'), 'SNAPSHOT_IN_USE');
    await sn.remove('b');
    await sn.remove('A');
    await rejects(sn.stat('A'), 'SNAPSHOT_NOT_FOUND');
  });

  s('labels: set at prepare and commit, changed and removed by update; sync of committed trees', async () => {
    await sn.prepare('a', undefined, { keep: '1' });
    await write('a', (d) => fs.writeFileSync(path.join(d, 'f'), 'x'));
    await sn.commit('A', 'a', { mark: 'boot-1' });
    assert.equal((await sn.stat('A')).labels, { keep: '1', mark: 'boot-1' });
    await sn.sync(['A', 'missing']);
    await sn.update('A', { mark: undefined, other: 'v' });
    assert.equal((await sn.stat('A')).labels, { keep: '1', other: 'v' });
    await rejects(sn.update('missing', { x: 'y' }), 'SNAPSHOT_NOT_FOUND');
    assert.is(await read('A', (d) => fs.readFileSync(path.join(d, 'f'), 'utf8')), 'x');
  });

  s('lifecycle rules: only active can commit, only committed can be parents, keys are unique', async () => {
    await sn.prepare('a');
    await sn.commit('A', 'a');
    await rejects(sn.commit('B', 'A'), 'SNAPSHOT_INVALID');
    await sn.view('v', 'A');
    await rejects(sn.commit('V', 'v'), 'SNAPSHOT_INVALID');
    await rejects(sn.prepare('c', 'v'), 'SNAPSHOT_INVALID');
    await sn.prepare('act');
    await rejects(sn.prepare('c', 'act'), 'SNAPSHOT_INVALID');
    await rejects(sn.prepare('act'), 'SNAPSHOT_EXISTS');
    await rejects(sn.prepare('x', 'missing'), 'SNAPSHOT_NOT_FOUND');
    await sn.prepare('d');
    await rejects(sn.commit('A', 'd'), 'SNAPSHOT_EXISTS');
  });

  s('content, modes, owners, symlinks, hardlinks and xattrs survive a commit chain; deletions and replaced dirs too', async () => {
    await sn.prepare('l1');
    await write('l1', (d) => {
      fs.mkdirSync(path.join(d, 'dir/sub'), { recursive: true });
      fs.writeFileSync(path.join(d, 'dir/sub/old'), 'old');
      fs.writeFileSync(path.join(d, 'exe'), '#!/bin/sh\n', { mode: 0o4755 });
      fs.chmodSync(path.join(d, 'exe'), 0o4755);
      fs.writeFileSync(path.join(d, 'owned'), 'o');
      fs.chownSync(path.join(d, 'owned'), 1234, 5678);
      fs.symlinkSync('/etc/target', path.join(d, 'link'));
      fs.writeFileSync(path.join(d, 'hard1'), 'h');
      fs.linkSync(path.join(d, 'hard1'), path.join(d, 'hard2'));
      fs.writeFileSync(path.join(d, 'gone'), 'g');
      if (!xattrWhy) {
        const r = spawnSync('setfattr', ['-n', 'user.tsb', '-v', 'yes', path.join(d, 'owned')]);
        assert.is(r.status, 0, `setfattr: ${r.stderr}`);
      }
    });
    await sn.commit('L1', 'l1');
    await sn.prepare('l2', 'L1');
    await write('l2', (d) => {
      fs.rmSync(path.join(d, 'gone'));
      fs.rmSync(path.join(d, 'dir/sub'), { recursive: true });
      fs.mkdirSync(path.join(d, 'dir/sub'));
      fs.writeFileSync(path.join(d, 'dir/sub/new'), 'new');
    });
    await sn.commit('L2', 'l2');
    await read('L2', (d) => {
      assert.equal(fs.readdirSync(path.join(d, 'dir/sub')), ['new']);
      assert.not.ok(fs.existsSync(path.join(d, 'gone')));
      assert.is(fs.statSync(path.join(d, 'exe')).mode & 0o7777, 0o4755);
      const st = fs.statSync(path.join(d, 'owned'));
      assert.equal([st.uid, st.gid], [1234, 5678]);
      assert.is(fs.readlinkSync(path.join(d, 'link')), '/etc/target');
      assert.is(fs.statSync(path.join(d, 'hard1')).ino, fs.statSync(path.join(d, 'hard2')).ino);
      const x = spawnSync('getfattr', ['--only-values', '-n', 'user.tsb', path.join(d, 'owned')], { encoding: 'utf8' });
      if (!xattrWhy) assert.is(x.stdout, 'yes', 'xattrs survive the commit chain');
    });
    await read('L1', (d) => {
      assert.equal(fs.readdirSync(path.join(d, 'dir/sub')), ['old'], 'the parent is unchanged');
      assert.ok(fs.existsSync(path.join(d, 'gone')));
    });
  });

  s('an active snapshot mounted volatile (a container removed when it exits) holds its writes, mounts volatile again, commits', async () => {
    await sn.prepare('base');
    await write('base', (d) => fs.writeFileSync(path.join(d, 'b'), 'b'));
    await sn.commit('B', 'base');
    await sn.prepare('v', 'B');
    const mounts = await sn.mounts('v', { volatile: true });
    // The kernel's overlay takes the option (Linux 5.10 on); other drivers have nothing to skip.
    if (sn.driver === 'overlayfs') assert.ok(mounts.some((m) => m.options.includes('volatile')), JSON.stringify(mounts));
    else assert.not.ok(mounts.some((m) => m.options.includes('volatile')), JSON.stringify(mounts));
    await withMountedData(mounts, path.join(root, `mnt-${Math.random()}`), (d) => fs.writeFileSync(path.join(d, 'f'), 'f'));
    // Overlay leaves work/incompat/volatile after a volatile mount and refuses the upper again while it is there.
    await withMountedData(await sn.mounts('v', { volatile: true }), path.join(root, `mnt-${Math.random()}`), (d) => {
      assert.is(fs.readFileSync(path.join(d, 'f'), 'utf8'), 'f');
      fs.writeFileSync(path.join(d, 'g'), 'g');
    });
    await sn.commit('V', 'v');
    await read('V', (d) => assert.equal(fs.readdirSync(d).sort(), ['b', 'f', 'g']));
    // Committed and view mounts are never volatile: they are read-only.
    assert.not.ok((await sn.mounts('V', { volatile: true })).some((m) => m.options.includes('volatile')));
  });

  s('a 200-layer chain mounts and reads correctly', async () => {
    let parent: string | undefined;
    for (let i = 0; i < 200; i++) {
      await sn.prepare(`a${i}`, parent);
      await write(`a${i}`, (d) => fs.writeFileSync(path.join(d, `f${i}`), String(i)));
      await sn.commit(`c${i}`, `a${i}`);
      parent = `c${i}`;
    }
    await sn.prepare('top', parent);
    await write('top', (d) => {
      for (let i = 0; i < 200; i++) assert.is(fs.readFileSync(path.join(d, `f${i}`), 'utf8'), String(i));
      fs.writeFileSync(path.join(d, 'top'), 't');
    });
  });

  s('concurrent prepare and commit from several processes keep metadata consistent', async () => {
    const door = new URL('./index.js', import.meta.url).pathname;
    const script = `import { openSnapshotter } from ${JSON.stringify(door)};
      const s = openSnapshotter(process.argv[1], ${JSON.stringify(o.name)});
      for (let i = 0; i < 15; i++) { const k = 'p' + process.pid + '-' + i; await s.prepare(k); await s.commit(k + '-c', k); }`;
    const { spawn } = await import('node:child_process');
    const kids = Array.from({ length: 4 }, () => spawn(process.execPath, ['--input-type=module', '-e', script, root], { stdio: 'inherit' }));
    const codes = await Promise.all(kids.map((k) => new Promise<number | null>((r) => k.on('close', r))));
    assert.equal(codes, [0, 0, 0, 0]);
    const keys: string[] = [];
    await sn.walk((i) => void keys.push(i.key));
    assert.is(keys.filter((k) => k.endsWith('-c')).length, 60);
  });

  s('retire frees the key at once; reapRetired deletes the files, oldest first beyond the budget', async () => {
    await sn.prepare('p');
    await sn.commit('P', 'p');
    await rejects(sn.retire('nothing', 1), 'SNAPSHOT_NOT_FOUND');
    for (const [k, bytes] of [['a', 100], ['b', 200], ['c', 300]] as const) {
      await sn.prepare(k, 'P');
      await rejects(sn.retire('P', 1), 'SNAPSHOT_IN_USE');
      await write(k, (d) => fs.writeFileSync(path.join(d, 'f'), k));
      await sn.retire(k, bytes);
      await new Promise((r) => setTimeout(r, 5)); // distinct retire times: the order is by time
    }
    await rejects(sn.stat('a'), 'SNAPSHOT_NOT_FOUND');
    await sn.prepare('a', 'P');
    const dir = path.join(o.storeDir(root), 'snapshots', 'retired');
    const left = () => (fs.existsSync(dir) ? fs.readdirSync(dir) : []);
    if (sn.retired().trees === 0) {
      // btrfs and zfs delete a subvolume or dataset at once
      assert.equal(left(), []);
      return;
    }
    await sn.cleanup();
    assert.equal(sn.retired(), { trees: 3, bytes: 600 }, 'cleanup() leaves retired trees alone');
    let shortFor = 1;
    assert.equal(await sn.reapRetired(1e9, () => shortFor-- > 0), { trees: 1, bytes: 100 }, 'within the budget, but the filesystem is short: the oldest goes');
    assert.equal(await sn.reapRetired(500), { trees: 0, bytes: 0 });
    assert.is(left().length, 2);
    // A reaper that died mid-way left its claim: the next one takes it over.
    const dead = spawnSync('true').pid!;
    const b = left().find((n) => n.endsWith('-200'))!;
    fs.renameSync(path.join(dir, b), path.join(dir, `${b}.reaping-${dead}`));
    assert.equal(sn.retired(), { trees: 2, bytes: 500 });
    assert.equal(await sn.reapRetired(0), { trees: 2, bytes: 500 });
    assert.equal(left(), []);
    assert.equal(sn.retired(), { trees: 0, bytes: 0 });
  });

  s('cleanup removes what metadata does not name (a crash between disk and metadata)', async () => {
    await sn.prepare('keep');
    const dir = o.storeDir(root);
    const orphan = path.join(dir, 'snapshots', '999999');
    fs.mkdirSync(path.join(orphan, 'fs'), { recursive: true });
    fs.writeFileSync(path.join(orphan, 'fs/junk'), 'x');
    await sn.cleanup();
    assert.not.ok(fs.existsSync(orphan));
    await sn.stat('keep');
    const u = await sn.usage('keep');
    assert.ok(u.inodes >= 1);
  });

  s.run();
}
