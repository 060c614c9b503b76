/** Container storage through the CLI: volumes (named, anonymous, filled from the image), binds, tmpfs, propagation. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { tmpdir } from '../testutil/index.js';
import { lifecycleFixture, until } from './lifecycle.fixture.js';

const { it, root, ctx, test, tsb, withContainers } = lifecycleFixture('vol');
const hostDirs: string[] = [];
test.after(() => {
  for (const d of hostDirs) fs.rmSync(d, { recursive: true, force: true });
});
const hostDir = () => {
  const d = tmpdir('tsb-vol-host-');
  hostDirs.push(d);
  return d;
};
const ok = async (args: string[]) => {
  const r = await tsb(args);
  assert.is(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
const sh = (cmd: string) => spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });

let built = false;
async function images(): Promise<void> {
  if (built) return;
  const d = ctx(
    'RUN mkdir -p /data /tmp && echo seeded > /data/seed && chown -R 1000:1000 /data && chmod 700 /data\n' +
      'RUN mkdir /anon && echo from-image > /anon/f\nVOLUME /anon\n' +
      // An absolute symlink that would lead to the host if a mount destination were resolved outside the root.
      `RUN ln -s ${hostDir()} /escape\n`,
  );
  await ok(['-t', 'vols', d]);
  built = true;
}

it('a named volume is filled from the image on first use (content, owner, mode) and keeps data across runs', async () => {
  await images();
  assert.is(await ok(['run', '--rm', '-v', 'keep:/data', 'vols', 'sh', '-c', 'cat /data/seed; stat -c "%u:%g %a" /data; echo later > /data/new']), 'seeded\n1000:1000 700\n');
  assert.is(await ok(['run', '--rm', '-v', 'keep:/data', 'vols', 'cat', '/data/new', '/data/seed']), 'later\nseeded\n');
  assert.match(await ok(['volume', 'ls']), /local\s+keep\n/);
  const mp = (await ok(['volume', 'inspect', '-f', '{{.Mountpoint}}', 'keep'])).trim();
  assert.is(mp, path.join(root, 'volumes/keep/_data'));
  assert.is(fs.readFileSync(path.join(mp, 'new'), 'utf8'), 'later\n');
  // Not empty any more: a later image content does not overwrite it; nocopy leaves an empty volume empty.
  assert.is(await ok(['run', '--rm', '-v', 'empty:/data:nocopy', 'vols', 'ls', '-A', '/data']), '');
  await ok(['volume', 'rm', 'keep', 'empty']);
  assert.not.ok(fs.existsSync(path.join(root, 'volumes/keep')));
});

it("an image VOLUME gets an anonymous volume: kept by rm, removed by rm -v and by run --rm", async () => {
  await images();
  const before = (await ok(['volume', 'ls', '-q'])).split('\n').filter(Boolean);
  await withContainers(['anon1'], async () => {
    assert.is(await ok(['run', '--name', 'anon1', 'vols', 'sh', '-c', 'cat /anon/f; echo written > /anon/g']), 'from-image\n');
    const mounts = JSON.parse(await ok(['inspect', '--type', 'container', '-f', '{{json .Mounts}}', 'anon1'])) as { Type: string; Name: string; Destination: string; RW: boolean }[];
    assert.is(mounts.length, 1);
    assert.is(mounts[0]!.Type, 'volume');
    assert.is(mounts[0]!.Destination, '/anon');
    assert.match(mounts[0]!.Name, /^[0-9a-f]{64}$/);
    assert.ok((await ok(['volume', 'ls', '-q'])).includes(mounts[0]!.Name));
    // In use: refused, naming the container.
    const rm = await tsb(['volume', 'rm', mounts[0]!.Name]);
    assert.is(rm.code, 1);
    assert.match(rm.stderr, /in use by container anon1/);
    await ok(['rm', '-v', 'anon1']);
    assert.not.ok((await ok(['volume', 'ls', '-q'])).includes(mounts[0]!.Name));
  });
  await ok(['run', '--rm', 'vols', 'true']);
  assert.equal((await ok(['volume', 'ls', '-q'])).split('\n').filter(Boolean), before);
});

it('binds: -v creates a missing host path, :ro refuses writes, --mount needs an existing source', async () => {
  await images();
  const h = hostDir();
  fs.writeFileSync(path.join(h, 'in'), 'host file\n');
  assert.is(await ok(['run', '--rm', '-v', `${h}:/mnt`, 'vols', 'sh', '-c', 'cat /mnt/in; echo from-ctr > /mnt/out']), 'host file\n');
  assert.is(fs.readFileSync(path.join(h, 'out'), 'utf8'), 'from-ctr\n');
  const ro = await tsb(['run', '--rm', '-v', `${h}:/mnt:ro`, 'vols', 'sh', '-c', 'echo x > /mnt/nope']);
  assert.is.not(ro.code, 0);
  assert.match(ro.stderr, /Read-only file system/);
  assert.not.ok(fs.existsSync(path.join(h, 'nope')));
  const r2 = await tsb(['run', '--rm', '--mount', `type=bind,source=${h},target=/m,readonly`, 'vols', 'touch', '/m/nope']);
  assert.is.not(r2.code, 0);
  const made = path.join(h, 'made/by/v');
  assert.is(await ok(['run', '--rm', '-v', `${made}:/x`, 'vols', 'ls', '-A', '/x']), '');
  assert.ok(fs.statSync(made).isDirectory());
  const missing = await tsb(['run', '--rm', '--mount', `type=bind,source=${h}/absent,target=/x`, 'vols', 'true']);
  assert.is(missing.code, 125);
  assert.match(missing.stderr, /bind source path does not exist: .*absent/);
  // A single file binds too.
  assert.is(await ok(['run', '--rm', '-v', `${h}/in:/etc/motd:ro`, 'vols', 'cat', '/etc/motd']), 'host file\n');
});

it('a mount destination behind an image symlink stays inside the container', async () => {
  await images();
  const escape = (await ok(['run', '--rm', 'vols', 'readlink', '/escape'])).trim();
  const h = hostDir();
  fs.writeFileSync(path.join(h, 'secret'), 'x');
  await ok(['run', '--rm', '-v', `${h}:/escape`, '-v', 'esc:/escape/inner', 'vols', 'true']);
  assert.equal(fs.readdirSync(escape), [], 'nothing was mounted or written on the host path the symlink names');
  assert.not.match(fs.readFileSync('/proc/self/mountinfo', 'utf8'), new RegExp(escape));
  await ok(['volume', 'rm', 'esc']);
});

it('tmpfs: --tmpfs and --mount type=tmpfs enforce their size; noexec by default', async () => {
  await images();
  const fill = 'dd if=/dev/zero of=/t/f bs=1024 count=2048 2>&1; echo rc=$?';
  assert.match(await ok(['run', '--rm', '--tmpfs', '/t:size=1m', 'vols', 'sh', '-c', fill]), /No space left on device[\s\S]*rc=1/);
  assert.match(await ok(['run', '--rm', '--mount', 'type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770', 'vols', 'sh', '-c', `${fill}; stat -c %a /t`]), /rc=1\n1770\n/);
  const mounts = await ok(['run', '--rm', '--tmpfs', '/t', 'vols', 'grep', ' /t ', '/proc/mounts']);
  assert.match(mounts, /tmpfs \/t tmpfs rw,nosuid,nodev,noexec/);
  assert.match(await ok(['run', '--rm', '--tmpfs', '/t:exec', 'vols', 'grep', ' /t ', '/proc/mounts']), /tmpfs \/t tmpfs rw,nosuid,nodev,relatime/);
});

it('volume commands: create with options, ls filters, prune keeps named volumes unless -a, in-use refusals', async () => {
  await images();
  assert.is(await ok(['volume', 'create', '--label', 'team=db', 'named1']), 'named1\n');
  assert.is(await ok(['volume', 'create', '-o', 'type=tmpfs', '-o', 'device=tmpfs', '-o', 'o=size=1m', 'tmpv']), 'tmpv\n');
  assert.match(await ok(['run', '--rm', '-v', 'tmpv:/t', 'vols', 'sh', '-c', 'dd if=/dev/zero of=/t/f bs=1024 count=2048 2>&1; true']), /No space left/);
  assert.is(await ok(['volume', 'ls', '-q', '--filter', 'label=team=db']), 'named1\n');
  const bad = await tsb(['volume', 'create', '-o', 'type=nfs', '-o', 'device=:/export', 'x1']);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /supports type=tmpfs and bind/);
  const badName = await tsb(['volume', 'create', 'a/b']);
  assert.match(badName.stderr, /invalid volume name/);
  await ok(['run', '--name', 'holder', '-v', 'named1:/n', 'vols', 'true']);
  await withContainers(['holder'], async () => {
    assert.is(await ok(['volume', 'ls', '-q', '--filter', 'dangling=true', '--filter', 'name=named1']), '');
    await tsb(['run', '-v', '/anon', '--rm', 'vols', 'true']);
    await ok(['volume', 'create', 'unusedanon']);
    const p = await ok(['volume', 'prune', '-f']);
    assert.not.match(p, /named1|unusedanon/);
    const all = await ok(['volume', 'prune', '-a', '-f']);
    assert.match(all, /tmpv\nunusedanon\n[\s\S]*Total reclaimed space/);
    assert.match(await ok(['volume', 'ls', '-q']), /named1/);
    assert.match((await tsb(['volume', 'rm', 'named1'])).stderr, /in use by container holder/);
  });
  await ok(['volume', 'rm', 'named1']);
  assert.is((await tsb(['volume', 'rm', 'named1'])).code, 1);
  assert.is((await tsb(['volume', 'rm', '-f', 'named1'])).code, 0);
  assert.match((await ok(['system', 'df'])), /Local Volumes/);
});

it('--volumes-from takes another container\'s volumes and binds, with :ro', async () => {
  await images();
  const h = hostDir();
  await withContainers(['src1'], async () => {
    await ok(['run', '--name', 'src1', '-v', 'shared1:/s', '-v', `${h}:/h`, 'vols', 'sh', '-c', 'echo one > /s/f']);
    assert.is(await ok(['run', '--rm', '--volumes-from', 'src1', 'vols', 'sh', '-c', 'cat /s/f; echo two > /h/g']), 'one\n');
    assert.is(fs.readFileSync(path.join(h, 'g'), 'utf8'), 'two\n');
    const ro = await tsb(['run', '--rm', '--volumes-from', 'src1:ro', 'vols', 'touch', '/s/x']);
    assert.is.not(ro.code, 0);
  });
  await ok(['volume', 'rm', 'shared1']);
});

it('bad mount flags are refused before anything is made', async () => {
  await images();
  const cases: [string[], RegExp][] = [
    [['-v', 'rel'], /must be an absolute path/],
    [['-v', 'x:/a:bogus'], /unknown option bogus/],
    [['-v', 'a:/d', '-v', 'b:/d'], /duplicate mount point: \/d/],
    [['--mount', 'type=nfs,target=/x'], /type=nfs is not supported/],
    [['--mount', 'type=bind,target=/x'], /needs source=HOST_PATH/],
    [['--tmpfs', '/t:size=lots'], /size/],
    [['--volumes-from', 'nosuchctr'], /No such container: nosuchctr/],
    [['-v', '/'], /cannot mount over \//],
  ];
  const vols = (await ok(['volume', 'ls', '-q'])).split('\n').filter(Boolean);
  for (const [flags, msg] of cases) {
    const r = await tsb(['run', '--rm', ...flags, 'vols', 'true']);
    assert.is(r.code, 125, flags.join(' '));
    assert.match(r.stderr, msg);
  }
  assert.equal((await ok(['volume', 'ls', '-q'])).split('\n').filter(Boolean), vols, 'no volume was made');
  assert.is(fs.readdirSync(path.join(root, 'containers')).filter((d) => !d.startsWith('.')).length, 0);
});

it('bind-propagation: rslave sees a host mount made after the start, rprivate does not, rshared sends one back; a private source is refused', async () => {
  await images();
  const h = hostDir();
  fs.mkdirSync(path.join(h, 'sub'));
  const refused = await tsb(['run', '--rm', '--mount', `type=bind,source=${h},target=/p,bind-propagation=rslave`, 'vols', 'true']);
  assert.is(refused.code, 125);
  assert.match(refused.stderr, /neither shared nor a slave/);
  assert.is(sh(`mount --bind ${h} ${h} && mount --make-shared ${h}`).status, 0);
  let sub = false;
  try {
    await withContainers(['slave1', 'private1'], async () => {
      await ok(['run', '-d', '--name', 'slave1', '--mount', `type=bind,source=${h},target=/p,bind-propagation=rslave`, 'vols', 'sleep', '600']);
      await ok(['run', '-d', '--name', 'private1', '-v', `${h}:/p`, 'vols', 'sleep', '600']);
      assert.is(sh(`mount -t tmpfs -o size=1m tsb-test ${h}/sub && echo late > ${h}/sub/file`).status, 0);
      sub = true;
      await until('the slave sees the mount', async () => (await tsb(['exec', 'slave1', 'cat', '/p/sub/file'])).stdout === 'late\n', 5000);
      assert.is((await tsb(['exec', 'private1', 'ls', '-A', '/p/sub'])).stdout, '');
    });
    // rshared: a mount made in the container reaches the host.
    fs.mkdirSync(path.join(h, 'back'));
    await withContainers(['shared1'], async () => {
      await ok(['run', '-d', '--name', 'shared1', '--cap-add', 'SYS_ADMIN', '--mount', `type=bind,source=${h},target=/p,bind-propagation=rshared`, 'vols', 'sleep', '600']);
      await ok(['exec', 'shared1', 'sh', '-c', 'mount -t tmpfs tsb-back /p/back && echo from-ctr > /p/back/f']);
      assert.is(fs.readFileSync(path.join(h, 'back/f'), 'utf8'), 'from-ctr\n');
      sh(`umount ${h}/back`);
    });
  } finally {
    if (sub) sh(`umount ${h}/sub`);
    sh(`umount ${h}/back 2>/dev/null; umount ${h}`);
  }
});

test.run();
