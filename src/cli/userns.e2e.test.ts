/**
 * A user namespace per container, as root: --uidmap/--gidmap and --userns auto. The image's files are
 * root's inside and the container's root is an unprivileged id on the host; what it cannot touch on
 * the host stays untouched; bad maps are refused before anything starts.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { cli, programUnavailable, tmpdir } from '../testutil/index.js';
import { lifecycleFixture } from './lifecycle.fixture.js';

const { it, itUnless, root, ctx, test, tsb, withContainers, inspect } = lifecycleFixture('userns');
const BASE = 3_000_000_000;
const hostDir = tmpdir('tsb-userns-host-');
const nativeRoot = tmpdir('tsb-userns-native-');
let addedRange: string | undefined;
test.after(async () => {
  fs.rmSync(hostDir, { recursive: true, force: true });
  await cli(['rm', '-f', 'n1'], { root: nativeRoot });
  fs.rmSync(nativeRoot, { recursive: true, force: true });
  dropRange();
});

/** A `containers` range above every range the machine has (the test's own, removed after). */
function addRange(): void {
  let top = 100000;
  for (const f of ['/etc/subuid', '/etc/subgid']) {
    for (const l of (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '').split('\n')) {
      const [, s, c] = l.split(':');
      if (s && c) top = Math.max(top, Number(s) + Number(c));
    }
  }
  addedRange = `containers:${top}:200000`;
  for (const f of ['/etc/subuid', '/etc/subgid']) {
    const cur = fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '';
    fs.writeFileSync(f, `${cur}${cur === '' || cur.endsWith('\n') ? '' : '\n'}${addedRange}\n`);
  }
}
function dropRange(): void {
  if (!addedRange) return;
  for (const f of ['/etc/subuid', '/etc/subgid']) {
    if (fs.existsSync(f)) fs.writeFileSync(f, fs.readFileSync(f, 'utf8').split('\n').filter((l) => l !== addedRange).join('\n'));
  }
  addedRange = undefined;
}
const hasContainersRange = () => ['/etc/subuid', '/etc/subgid'].every((f) => fs.existsSync(f) && /^containers:/m.test(fs.readFileSync(f, 'utf8')));

const ok = async (args: string[], r = root) => {
  const res = await cli(args, { root: r });
  assert.is(res.code, 0, `${args.join(' ')}: ${res.stderr}`);
  return res.stdout;
};

let built = false;
const IMAGE =
  'RUN mkdir -p /data /home/u /op && echo hi > /data/f && chown 1000:1000 /home/u && touch /op/old\n' +
  // An opaque directory in a later layer: the container must see /op/new only.
  'RUN rm -rf /op && mkdir /op && touch /op/new\nCMD ["sh"]\n';
async function image(): Promise<void> {
  if (built) return;
  await ok(['-q', '-t', 'uns', ctx(IMAGE)]);
  built = true;
}

const uidOnHost = (pid: number) => Number(/^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

it("--uidmap: the image's files are root's inside, the process is the mapped id on the host, and its writes land under host ids", async () => {
  await image();
  const map = `0:${BASE}:65536`;
  const out = await ok(['run', '--rm', '--network', 'none', '--uidmap', map, 'uns', 'sh', '-c',
    'id -u; cat /proc/self/uid_map /proc/self/gid_map | tr -s " "; stat -c "%u:%g %n" / /data/f /home/u; ls /op; chmod 600 /data/f && echo chmod-ok; hostname >/dev/null && echo uts-ok']);
  assert.is(out, `0\n 0 ${BASE} 65536\n 0 ${BASE} 65536\n0:0 /\n0:0 /data/f\n1000:1000 /home/u\nnew\nchmod-ok\nuts-ok\n`);
  // On a bridge the network namespace is the host's (tsbuild made it), so the container's root holds no
  // capability over it: Docker's sysctls let it bind port 80 all the same.
  assert.is(await ok(['run', '--rm', '--network', 'bridge', '--uidmap', map, 'uns', 'sh', '-c', 'httpd -p 80 -h / && echo bound; id -u']), 'bound\n0\n');
  await withContainers(['m1'], async () => {
    await ok(['run', '-d', '--name', 'm1', '--uidmap', map, '--gidmap', `0:${BASE + 100000}:65536`, 'uns', 'sleep', '60']);
    const pid = Number(await inspect('m1', '{{.State.Pid}}'));
    assert.is(uidOnHost(pid), BASE);
    assert.is(await inspect('m1', '{{.HostConfig.UsernsMode}}'), 'private');
    assert.is(await ok(['exec', 'm1', 'sh', '-c', 'id -u; id -g; touch /made; stat -c %u:%g /made']), '0\n0\n0:0\n');
    const st = fs.statSync(`/proc/${pid}/root/made`);
    assert.equal([st.uid, st.gid], [BASE, BASE + 100000]);
    assert.is(await ok(['exec', '-u', '1000', 'm1', 'sh', '-c', 'touch /home/u/mine && stat -c %u /home/u/mine']), '1000\n');
    assert.is(fs.statSync(`/proc/${pid}/root/home/u/mine`).uid, BASE + 1000);
    // cp in: owned by the container's root, seen from inside.
    fs.writeFileSync(path.join(hostDir, 'in'), 'copied\n');
    await ok(['cp', path.join(hostDir, 'in'), 'm1:/in']);
    assert.is(await ok(['exec', 'm1', 'stat', '-c', '%u:%g', '/in']), '0:0\n');
    // A tar on stdin keeps its entries' ids as the container sees them.
    const tar = spawnSync('tar', ['--owner=1000', '--group=1000', '-cf', '-', '-C', hostDir, 'in'], { encoding: 'latin1' });
    const r = await tsb(['cp', '-', 'm1:/home/u'], tar.stdout);
    assert.is(r.code, 0, r.stderr);
    assert.is(await ok(['exec', 'm1', 'stat', '-c', '%u:%g', '/home/u/in']), '1000:1000\n');
  });
});

it("a bind-mounted root-owned host file cannot be written by the container's root; a tsbuild volume is seen through the map", async () => {
  await image();
  fs.writeFileSync(path.join(hostDir, 'rootfile'), 'host\n');
  fs.chmodSync(path.join(hostDir, 'rootfile'), 0o644);
  const out = await ok(['run', '--rm', '--uidmap', `0:${BASE}:65536`, '-v', `${hostDir}:/h`, '-v', 'unsvol:/data', 'uns', 'sh', '-c',
    'echo bad >> /h/rootfile || echo denied; touch /h/new 2>/dev/null || echo denied-create; chmod 777 /h/rootfile 2>/dev/null || echo denied-chmod; cat /data/f; echo vol > /data/g; stat -c %u:%g /data/g']);
  assert.is(out, 'denied\ndenied-create\ndenied-chmod\nhi\n0:0\n');
  assert.is(fs.readFileSync(path.join(hostDir, 'rootfile'), 'utf8'), 'host\n');
  assert.is(fs.statSync(path.join(hostDir, 'rootfile')).mode & 0o777, 0o644);
  assert.not.ok(fs.existsSync(path.join(hostDir, 'new')));
  // On disk the volume holds real ids: the next container, in any namespace, sees root's file.
  const g = path.join(root, 'volumes/unsvol/_data/g');
  assert.equal([fs.statSync(g).uid, fs.readFileSync(g, 'utf8')], [0, 'vol\n']);
  await ok(['volume', 'rm', 'unsvol']);
});

it('an rslave bind still receives what the host mounts later', async () => {
  await image();
  const src = path.join(hostDir, 'prop');
  fs.mkdirSync(src);
  const mounted: string[] = [];
  const sh = (cmd: string) => assert.is(spawnSync('sh', ['-c', cmd]).status, 0, cmd);
  try {
    sh(`mount -t tmpfs tsb-userns-prop ${src} && mount --make-shared ${src}`);
    mounted.push(src);
    await withContainers(['s1'], async () => {
      await ok(['run', '-d', '--name', 's1', '--uidmap', `0:${BASE}:65536`, '-v', `${src}:/p:rslave`, 'uns', 'sleep', '60']);
      fs.mkdirSync(path.join(src, 'sub'));
      sh(`mount -t tmpfs tsb-userns-sub ${src}/sub && echo later > ${src}/sub/m`);
      mounted.push(path.join(src, 'sub'));
      assert.is(await ok(['exec', 's1', 'cat', '/p/sub/m']), 'later\n');
    });
  } finally {
    for (const m of mounted.reverse()) spawnSync('umount', [m]);
  }
});

it('--userns auto: without a "containers" range it says what to add; with one, each container gets its own block', async () => {
  await image();
  if (!hasContainersRange()) {
    const r = await tsb(['run', '--rm', '--userns', 'auto', 'uns', 'true']);
    assert.is(r.code, 125);
    assert.match(r.stderr, /\/etc\/subuid has no range for the user "containers".*echo containers:2147483647:2147483648 >> \/etc\/subuid/);
    assert.is((await ok(['ps', '-a', '-q'])).trim(), '', 'nothing is left of the refused container');
    assert.match(await ok(['info']), /User namespaces: .*--userns auto needs a range for the user "containers" in \/etc\/subuid/);
    addRange();
    assert.match(await ok(['info']), /--userns auto draws from "containers": 200000 uids, 200000 gids \(3 blocks of 65536\)/);
  }
  await withContainers(['a1', 'a2'], async () => {
    await ok(['run', '-d', '--name', 'a1', '--userns', 'auto', 'uns', 'sleep', '60']);
    await ok(['run', '-d', '--name', 'a2', '--userns=auto:size=1000', 'uns', 'sleep', '60']);
    const map = async (n: string) => (await ok(['exec', n, 'cat', '/proc/self/uid_map'])).trim().split(/\s+/).map(Number);
    const [c1, h1, s1] = await map('a1');
    const [c2, h2, s2] = await map('a2');
    assert.equal([c1, s1, c2, s2], [0, 65536, 0, 1000]);
    assert.ok(h1! + s1! <= h2! || h2! + s2! <= h1!, `blocks overlap: ${h1}+${s1}, ${h2}+${s2}`);
    assert.is(await inspect('a1', '{{.HostConfig.UsernsMode}}'), 'auto');
    assert.is(uidOnHost(Number(await inspect('a2', '{{.State.Pid}}'))), h2);
    // A restart keeps the block the container was given.
    await ok(['restart', '-t', '0', 'a1']);
    assert.equal(await map('a1'), [c1, h1, s1]);
  });
});

it('the native snapshotter: the whole root is seen through the map, so writes keep real ids on disk', async () => {
  await ok(['-q', '--snapshotter', 'native', '-t', 'unsn', ctx(IMAGE)], nativeRoot);
  await ok(['run', '-d', '--snapshotter', 'native', '--name', 'n1', '--uidmap', `0:${BASE}:65536`, 'unsn', 'sleep', '60'], nativeRoot);
  const pid = Number((await ok(['inspect', '--type', 'container', '-f', '{{.State.Pid}}', 'n1'], nativeRoot)).trim());
  assert.is(uidOnHost(pid), BASE);
  assert.is(await ok(['exec', 'n1', 'sh', '-c', 'stat -c %u /data/f; echo x > /w; stat -c %u /w'], nativeRoot), '0\n0\n');
  const onDisk = fs.readdirSync(path.join(nativeRoot, 'snapshots/native'), { recursive: true }).map(String).find((p) => p.endsWith('/fs/w'));
  assert.ok(onDisk, 'the write is in the container snapshot');
  assert.is(fs.statSync(path.join(nativeRoot, 'snapshots/native', onDisk!)).uid, 0);
  // cp: refused with the reason while it runs (host root has no id in the map), right once stopped.
  fs.writeFileSync(path.join(hostDir, 'native-in'), 'n\n');
  const running = await cli(['cp', path.join(hostDir, 'native-in'), 'n1:/native-in'], { root: nativeRoot });
  assert.is(running.code, 1);
  assert.match(running.stderr, /cannot write \/native-in in container n1 while it runs: .*stop the container and copy again/);
  // Lifecycle commands name the snapshotter: the record does not (outside this test's subject).
  await ok(['--snapshotter', 'native', 'stop', '-t', '0', 'n1'], nativeRoot);
  await ok(['--snapshotter', 'native', 'cp', path.join(hostDir, 'native-in'), 'n1:/native-in'], nativeRoot);
  await ok(['--snapshotter', 'native', 'start', 'n1'], nativeRoot);
  assert.is(await ok(['exec', 'n1', 'stat', '-c', '%u:%g', '/native-in'], nativeRoot), '0:0\n');
  await ok(['rm', '-f', 'n1'], nativeRoot);
});

itUnless(programUnavailable('fuse-overlayfs', ['--version'], 'fuse-overlayfs'), 'fuse-overlayfs: the layers are shown through the map by fuse-overlayfs itself, writes keep the container\'s ids on disk, cp works running and stopped', async () => {
  const fz = (args: string[]) => ok(['--snapshotter', 'fuse-overlayfs', ...args]);
  await fz(['-q', '-t', 'unsf', ctx(IMAGE)]);
  await withContainers(['f1'], async () => {
    await fz(['run', '-d', '--name', 'f1', '--uidmap', `0:${BASE}:65536`, 'unsf', 'sleep', '60']);
    const pid = Number(await inspect('f1', '{{.State.Pid}}'));
    assert.is(uidOnHost(pid), BASE);
    assert.is(await fz(['exec', 'f1', 'sh', '-c', 'stat -c "%u:%g %n" / /data/f /home/u; ls /op; echo x > /w; stat -c %u /w']), '0:0 /\n0:0 /data/f\n1000:1000 /home/u\nnew\n0\n');
    const onDisk = fs.readdirSync(path.join(root, 'snapshots/fuse-overlayfs'), { recursive: true }).map(String).find((p) => p.endsWith('/fs/w'));
    assert.ok(onDisk, 'the write is in the container snapshot');
    assert.is(fs.statSync(path.join(root, 'snapshots/fuse-overlayfs', onDisk!)).uid, 0, 'on disk under the container\'s id: no chown per map');
    fs.writeFileSync(path.join(hostDir, 'fuse-in'), 'f\n');
    await fz(['cp', path.join(hostDir, 'fuse-in'), 'f1:/running-in']);
    await fz(['stop', '-t', '0', 'f1']);
    await fz(['cp', path.join(hostDir, 'fuse-in'), 'f1:/stopped-in']);
    await fz(['start', 'f1']);
    assert.is(await fz(['exec', 'f1', 'stat', '-c', '%u:%g', '/running-in', '/stopped-in']), '0:0\n0:0\n');
    await fz(['rm', '-f', 'f1']);
  });
});

it('--userns keep-id as root: every id as itself, in a user namespace of its own (capabilities only there)', async () => {
  await image();
  const hostNs = fs.readlinkSync('/proc/self/ns/user');
  const out = await ok(['run', '--rm', '--network', 'none', '--userns', 'keep-id', 'uns', 'sh', '-c', 'id -u; cat /proc/self/uid_map | tr -s " "; readlink /proc/self/ns/user; stat -c %u:%g /data/f /home/u']);
  const [uid, map, ns, ...owners] = out.trim().split('\n');
  assert.is(uid, '0');
  assert.is(map, ' 0 0 4294967295');
  assert.is.not(ns, hostNs, 'a user namespace of its own');
  assert.equal(owners, ['0:0', '1000:1000']);
  await withContainers(['k1'], async () => {
    await ok(['run', '-d', '--name', 'k1', '--userns', 'keep-id', 'uns', 'sleep', '60']);
    assert.is(await inspect('k1', '{{.HostConfig.UsernsMode}}'), 'keep-id');
  });
});

it('bad maps and modes are refused before anything starts, naming the flag and the fix', async () => {
  await image();
  const cases: [string[], RegExp][] = [
    [['--uidmap', '0:1'], /--uidmap 0:1: expected CONTAINER_ID:HOST_ID:SIZE/],
    [['--uidmap', `0:${BASE}:10`, '--uidmap', `5:${BASE + 100}:10`], /container ranges overlap/],
    [['--uidmap', '0:0:65536'], /maps host root \(id 0\) into the container; use --userns host/],
    [['--gidmap', `1:${BASE}:10`], /--gidmap: container id 0 is not mapped/],
    [['--userns', 'host', '--uidmap', `0:${BASE}:10`], /--userns host and --uidmap\/--gidmap conflict/],
    [['--userns', 'auto', '--uidmap', `0:${BASE}:10`], /auto chooses the maps/],
    [['--userns', 'auto:size=lots'], /unknown or bad option "size=lots"/],
    [['--userns', 'private'], /unknown mode; use host \(the default\), auto/],
    [['--userns', 'keep-id:uid=5'], /as root, keep-id keeps every id as it is and takes no options/],
    [['--userns', 'keep-id', '--uidmap', `0:${BASE}:10`], /keep-id chooses the maps/],
    [['--uidmap', `0:${BASE}:65536`, '-v', `${hostDir}:/h:rshared`], /rshared propagation cannot be given to a container with a user namespace of its own/],
    [['--uidmap', `0:${BASE}:100`, '-u', '5000'], /the container's user has uid 5000, which its user namespace does not map/],
  ];
  for (const [args, re] of cases) {
    const r = await tsb(['run', '--rm', ...args, 'uns', 'true']);
    assert.is(r.code, 125, args.join(' '));
    assert.match(r.stderr, re, args.join(' '));
  }
  assert.is((await ok(['ps', '-a', '-q'])).trim(), '');
});

test.run();
