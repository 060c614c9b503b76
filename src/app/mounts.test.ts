import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path from 'node:path';
import { parseMountFlag, parseTmpfsFlag, parseVolumeFlag } from './mounts.js';

test('-v: volume, bind, anonymous, options', () => {
  assert.equal(parseVolumeFlag('data:/var/lib/db'), { type: 'volume', source: 'data', target: '/var/lib/db', readonly: false });
  assert.equal(parseVolumeFlag('/srv/site:/usr/share/site/:ro'), { type: 'bind', source: '/srv/site', target: '/usr/share/site', readonly: true });
  assert.equal(parseVolumeFlag('./rel:/x:rslave,z'), { type: 'bind', source: path.resolve('rel'), target: '/x', readonly: false, propagation: 'rslave' });
  assert.equal(parseVolumeFlag('/cache'), { type: 'volume', source: '', target: '/cache', readonly: false });
  assert.equal(parseVolumeFlag('/cache:ro'), { type: 'volume', source: '', target: '/cache', readonly: true });
  assert.equal(parseVolumeFlag('v:/x:nocopy'), { type: 'volume', source: 'v', target: '/x', readonly: false, nocopy: true });
  assert.throws(() => parseVolumeFlag('v:/x:rslave'), /unknown option rslave/);
  assert.throws(() => parseVolumeFlag('a:b:c:d'), /SOURCE:\]TARGET/);
  assert.throws(() => parseVolumeFlag('v:rel'), /absolute/);
});

test('--mount: Docker keys, booleans, defaults to a volume', () => {
  assert.equal(parseMountFlag('target=/d'), { type: 'volume', source: '', target: '/d', readonly: false });
  assert.equal(parseMountFlag('type=volume,src=v,dst=/d,ro=true,volume-nocopy'), { type: 'volume', source: 'v', target: '/d', readonly: true, nocopy: true });
  assert.equal(parseMountFlag('type=bind,source=/,target=/h,readonly=false,bind-propagation=rshared'), { type: 'bind', source: '/', target: '/h', readonly: false, propagation: 'rshared' });
  assert.equal(parseMountFlag('type=tmpfs,destination=/t,tmpfs-size=1m,tmpfs-mode=1777'), { type: 'tmpfs', source: '', target: '/t', readonly: false, tmpfsSize: 1 << 20, tmpfsMode: 0o1777 });
  assert.throws(() => parseMountFlag('type=tmpfs,target=/t,tmpfs-mode=999'), /octal/);
  assert.throws(() => parseMountFlag('type=volume,target=/t,bind-propagation=rslave'), /unknown option bind-propagation/);
  assert.throws(() => parseMountFlag('type=bind,source=/,target=/h,readonly=maybe'), /not true or false/);
  assert.throws(() => parseMountFlag('type=volume,target=/t,volume-driver=nfs'), /only the local driver/);
});

test('--tmpfs: size, mode, exec and refused options', () => {
  assert.equal(parseTmpfsFlag('/run:size=64m,mode=755,exec,uid=1'), { type: 'tmpfs', source: '', target: '/run', readonly: false, options: ['exec', 'uid=1'], tmpfsSize: 64 << 20, tmpfsMode: 0o755 });
  assert.throws(() => parseTmpfsFlag('/run:suid'), /unknown option suid/);
});

test.run();
