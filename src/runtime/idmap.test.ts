import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { allocateAuto, checkIdMaps, containerIdOf, hostIdOf, idmapSources, keepIdMap, parseAutoOptions, parseIdMap, parseKeepIdOptions, parseProcMap, subIdRanges } from './idmap.js';
import { tmpdir } from '../testutil/index.js';

test('parseIdMap takes CONTAINER:HOST:SIZE and names the flag and the form when it is not that', () => {
  assert.equal(parseIdMap('--uidmap', '0:100000:65536'), { containerID: 0, hostID: 100000, size: 65536 });
  for (const bad of ['0:1', '0:1:2:3', 'a:1:2', '-1:1:2', '0:1:x', '']) {
    assert.throws(() => parseIdMap('--uidmap', bad), (e: Error) => e.message.includes(`--uidmap ${bad}: expected CONTAINER_ID:HOST_ID:SIZE`), bad);
  }
  assert.throws(() => parseIdMap('--gidmap', '0:1:0'), /--gidmap 0:1:0: the size must be at least 1/);
  assert.throws(() => parseIdMap('--uidmap', '0:4294967295:2'), /ends past 4294967295/);
});

test('checkIdMaps: no overlap on either side, container root mapped, host root never', () => {
  checkIdMaps('--uidmap', [{ containerID: 0, hostID: 100000, size: 1000 }, { containerID: 1000, hostID: 300000, size: 10 }]);
  assert.throws(() => checkIdMaps('--uidmap', [{ containerID: 0, hostID: 100000, size: 1000 }, { containerID: 999, hostID: 300000, size: 10 }]), /container ranges overlap/);
  assert.throws(() => checkIdMaps('--uidmap', [{ containerID: 0, hostID: 100000, size: 1000 }, { containerID: 2000, hostID: 100999, size: 10 }]), /host ranges overlap/);
  assert.throws(() => checkIdMaps('--uidmap', [{ containerID: 1, hostID: 100000, size: 10 }]), /container id 0 is not mapped/);
  assert.throws(() => checkIdMaps('--gidmap', [{ containerID: 0, hostID: 0, size: 10 }]), /--gidmap 0:0:10: maps host root/);
});

test('hostIdOf and containerIdOf translate inside the ranges and give undefined outside', () => {
  const m = [{ containerID: 0, hostID: 100000, size: 10 }, { containerID: 1000, hostID: 5000, size: 1 }];
  assert.is(hostIdOf(m, 0), 100000);
  assert.is(hostIdOf(m, 9), 100009);
  assert.is(hostIdOf(m, 10), undefined);
  assert.is(hostIdOf(m, 1000), 5000);
  assert.is(containerIdOf(m, 100003), 3);
  assert.is(containerIdOf(m, 0), undefined);
});

test('subIdRanges reads every range of one user and skips malformed lines', () => {
  const text = 'containers:100000:65536\nalice:1:2\ncontainers:x:1\ncontainers:500000:10\ncontainers:1:2:3\n';
  assert.equal(subIdRanges(text, 'containers'), [{ start: 100000, count: 65536 }, { start: 500000, count: 10 }]);
  assert.equal(subIdRanges(text, 'bob'), []);
});

test('allocateAuto takes the lowest free block, skipping other containers, across ranges; says what to add when it cannot', () => {
  const dir = tmpdir();
  try {
    const files = { subuid: path.join(dir, 'subuid'), subgid: path.join(dir, 'subgid') };
    assert.throws(() => allocateAuto(10, [], files), (e: Error) => e.message.includes(`${files.subuid} has no range for the user "containers"`) && e.message.includes('echo containers:'));
    fs.writeFileSync(files.subuid, 'containers:1000:25\ncontainers:5000:100\n');
    fs.writeFileSync(files.subgid, 'containers:2000:100\n');
    const a = allocateAuto(10, [], files);
    assert.equal(a, { uid: [{ containerID: 0, hostID: 1000, size: 10 }], gid: [{ containerID: 0, hostID: 2000, size: 10 }] });
    const b = allocateAuto(10, [a], files);
    assert.equal(b.uid[0]!.hostID, 1010);
    assert.equal(b.gid[0]!.hostID, 2010);
    // The first range has 5 ids left: the next block comes from the second.
    const c = allocateAuto(10, [a, b], files);
    assert.equal(c.uid[0]!.hostID, 5000);
    // A gap left by a removed container is reused.
    assert.equal(allocateAuto(10, [b, c], files).uid[0]!.hostID, 1000);
    assert.throws(() => allocateAuto(1000, [], files), /no free block of 1000 ids left/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('parseAutoOptions: size=N, anything else refused with the form', () => {
  assert.is(parseAutoOptions('auto'), 65536);
  assert.is(parseAutoOptions('auto:size=2000'), 2000);
  for (const bad of ['auto:size=0', 'auto:size=x', 'auto:uidmapping=0:1:2']) {
    assert.throws(() => parseAutoOptions(bad), /the form is auto or auto:size=N/, bad);
  }
});

test('idmapSources: the overlay lowers (relative to its cwd) and bind sources, never the upper', () => {
  const got = idmapSources([
    { type: 'overlay', source: 'overlay', options: ['lowerdir=3/fs:2/fs', 'upperdir=4/fs', 'workdir=4/work'], cwd: '/s/overlay' },
    { type: 'bind', source: '/s/native/7/fs', options: ['rbind'] },
  ]);
  assert.equal(got, ['/s/overlay/3/fs', '/s/overlay/2/fs', '/s/native/7/fs']);
});

test('keep-id: the user becomes the given id, its subordinate ids fill the rest as podman maps them; none without a range', () => {
  const own = parseProcMap('         0       1000          1\n         1     100000      65536\n');
  assert.equal(own, [{ containerID: 0, hostID: 1000, size: 1 }, { containerID: 1, hostID: 100000, size: 65536 }]);
  const m = keepIdMap(own, 1000)!;
  assert.equal(m, [{ containerID: 0, hostID: 1, size: 1000 }, { containerID: 1000, hostID: 0, size: 1 }, { containerID: 1001, hostID: 1001, size: 64536 }]);
  assert.is(hostIdOf(m, 1000), 0, 'the user is itself');
  assert.is(hostIdOf(m, 0), 1, "the container's root is the first subordinate id");
  // An id above the range: everything below it that fits, then the user; nothing after.
  assert.equal(keepIdMap(own, 70000), [{ containerID: 0, hostID: 1, size: 65536 }, { containerID: 70000, hostID: 0, size: 1 }]);
  assert.equal(keepIdMap(own, 0), [{ containerID: 0, hostID: 0, size: 1 }, { containerID: 1, hostID: 1, size: 65536 }]);
  assert.is(keepIdMap(parseProcMap('0 1000 1\n'), 1000), undefined, 'a single-id map has nothing for root');
  assert.equal(parseKeepIdOptions('keep-id'), {});
  assert.equal(parseKeepIdOptions('keep-id:uid=5,gid=6'), { uid: 5, gid: 6 });
  assert.throws(() => parseKeepIdOptions('keep-id:size=5'), /unknown or bad option "size=5"; the form is keep-id or keep-id:uid=UID,gid=GID/);
});

test.run();
