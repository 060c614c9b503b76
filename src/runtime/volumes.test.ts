import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MS } from './mounts.js';
import { rootPropagation } from './spec.js';
import { checkPropagation, specMount, Volumes } from './volumes.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'tsb-volunit-'));

test('records: create is idempotent, other options refused, remove takes data, sweep takes orphans', () => {
  const root = tmp();
  try {
    const v = new Volumes(root);
    const a = v.create('data', { labels: { a: 'b' } });
    assert.is(a.Mountpoint, path.join(root, 'volumes/data/_data'));
    assert.is(v.create('data').CreatedAt, a.CreatedAt);
    assert.throws(() => v.create('data', { options: { type: 'tmpfs' } }), /already exists with other options/);
    const anon = v.create(undefined, { anonymous: true });
    assert.match(anon.Name, /^[0-9a-f]{64}$/);
    assert.equal(v.list().map((x) => x.Name).sort(), [anon.Name, 'data'].sort());
    fs.writeFileSync(path.join(root, 'volumes/data/_data/f'), 'x');
    v.remove('data');
    assert.not.ok(fs.existsSync(path.join(root, 'volumes/data')));
    assert.throws(() => v.remove('data'), /no such volume/);
    fs.mkdirSync(path.join(root, 'volumes/orphan/_data'), { recursive: true });
    fs.writeFileSync(path.join(root, 'volumes/broken.json'), '');
    fs.mkdirSync(path.join(root, 'volumes/damaged'));
    fs.writeFileSync(path.join(root, 'volumes/damaged/volume.json'), '{');
    assert.equal(v.list().map((x) => x.Name), [anon.Name], 'a damaged record hides nothing else');
    v.sweep();
    assert.not.ok(fs.existsSync(path.join(root, 'volumes/orphan')));
    v.remove('damaged');
    assert.throws(() => v.create('x'), /invalid volume name/);
    assert.throws(() => v.create('ok1', { options: { type: 'nfs', device: ':/e' } }), /supports type=tmpfs and bind/);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('spec mounts: volumes by data dir or driver options, binds recursive with propagation, tmpfs noexec', () => {
  const root = tmp();
  try {
    const v = new Volumes(root);
    v.create('plain');
    v.create('tv', { options: { type: 'tmpfs', device: 'tmpfs', o: 'size=1m' } });
    assert.equal(specMount({ type: 'volume', source: 'plain', target: '/d', readonly: true }, v), { destination: '/d', type: 'none', source: v.dataDir('plain'), flags: MS.BIND | MS.REC | MS.RDONLY, data: '', propagation: MS.PRIVATE | MS.REC, idmap: true });
    assert.equal(specMount({ type: 'volume', source: 'tv', target: '/t', readonly: false }, v), { destination: '/t', type: 'tmpfs', source: 'tmpfs', flags: MS.NOSUID | MS.NODEV, data: 'size=1m' });
    assert.equal(specMount({ type: 'tmpfs', source: '', target: '/t', readonly: false, tmpfsSize: 1024, tmpfsMode: 0o1777 }, v).data, 'size=1024,mode=1777');
    assert.is(specMount({ type: 'tmpfs', source: '', target: '/t', readonly: false, options: ['exec'] }, v).flags & MS.NOEXEC, 0);
    const b = specMount({ type: 'bind', source: root, target: '/h', readonly: false, propagation: 'rslave' }, v);
    assert.is(b.propagation, MS.SLAVE | MS.REC);
    assert.is(rootPropagation([b]), MS.SLAVE | MS.REC);
    assert.is(rootPropagation([{ ...b, propagation: MS.SHARED }]), MS.SHARED | MS.REC);
    assert.is(rootPropagation([]), MS.PRIVATE | MS.REC);
    assert.throws(() => specMount({ type: 'volume', source: 'gone', target: '/g', readonly: false }, v), /volume gone is gone/);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('propagation needs a shared (or slave) source mount, found by the longest mount point', () => {
  const dir = tmp();
  try {
    const info = path.join(dir, 'mountinfo');
    const line = (id: number, mp: string, opt: string) => `${id} 1 0:1 / ${mp} rw ${opt} - ext4 /dev/x rw`;
    fs.writeFileSync(info, [line(1, '/', 'shared:1'), line(2, dir, '')].join('\n'));
    assert.throws(() => checkPropagation(dir, 'rslave', info), /neither shared nor a slave[\s\S]*--make-rshared/);
    checkPropagation(dir, 'rprivate', info);
    fs.writeFileSync(info, [line(1, '/', ''), line(2, dir, 'master:3')].join('\n'));
    checkPropagation(dir, 'rslave', info);
    assert.throws(() => checkPropagation(dir, 'rshared', info), /not shared/);
    fs.writeFileSync(info, [line(1, '/', 'shared:1')].join('\n'));
    checkPropagation(dir, 'rshared', info);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
