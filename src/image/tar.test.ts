/** The tar writer's output is read back by node-tar and GNU tar exactly as written. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as tar from 'tar';
import { encodeHeader, padding, END_OF_ARCHIVE, type TarHeader } from './tar.js';
import { sha256 } from './digest.js';
import { tmpdir } from '../testutil/index.js';

function archive(entries: { h: TarHeader; body?: string }[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    parts.push(encodeHeader(e.h));
    if (e.body) {
      parts.push(Buffer.from(e.body));
      parts.push(padding(Buffer.byteLength(e.body)));
    }
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

const base = { mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 1700000000 };
const longName = 'deep/' + 'a'.repeat(120) + '/file.txt';
const entries: { h: TarHeader; body?: string }[] = [
  { h: { ...base, name: 'dir', type: 'dir', mode: 0o755 } },
  { h: { ...base, name: 'dir/hello.txt', type: 'file', size: 5, uid: 1000, gid: 1001 }, body: 'hello' },
  { h: { ...base, name: longName, type: 'file', size: 3 }, body: 'abc' },
  { h: { ...base, name: 'dir/ünïcode-名前', type: 'file', size: 1 }, body: 'u' },
  { h: { ...base, name: 'dir/link', type: 'symlink', linkname: '/' + 't'.repeat(150) } },
  { h: { ...base, name: 'dir/hard', type: 'hardlink', linkname: 'dir/hello.txt' } },
  { h: { ...base, name: 'dir/.wh.gone', type: 'file' } },
  { h: { ...base, name: 'bigid', type: 'file', uid: 3000000, gid: 4000000, size: 0 } },
  { h: { ...base, name: 'dev', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 } },
  { h: { ...base, name: 'setuid', type: 'file', mode: 0o4755 } },
];

test('node-tar reads every entry with its metadata', async () => {
  const dir = tmpdir();
  try {
    const file = path.join(dir, 'a.tar');
    fs.writeFileSync(file, archive(entries));
    const seen: Record<string, { type: string; uid?: number; gid?: number; mode?: number; linkpath?: string; size?: number }> = {};
    await tar.t({ file, onReadEntry: (e) => void (seen[e.path] = { type: e.type, uid: e.uid, gid: e.gid, mode: e.mode, linkpath: e.linkpath, size: e.size }) });
    assert.is(seen['dir/']?.type, 'Directory');
    assert.equal([seen['dir/hello.txt']?.uid, seen['dir/hello.txt']?.gid, seen['dir/hello.txt']?.size], [1000, 1001, 5]);
    assert.ok(seen[longName], 'long names through PAX');
    assert.ok(seen['dir/ünïcode-名前'], 'non-ASCII names through PAX');
    assert.is(seen['dir/link']?.linkpath, '/' + 't'.repeat(150));
    assert.is(seen['dir/hard']?.type, 'Link');
    assert.equal([seen['bigid']?.uid, seen['bigid']?.gid], [3000000, 4000000]);
    assert.is(seen['dev']?.type, 'CharacterDevice');
    assert.is((seen['setuid']?.mode ?? 0) & 0o7777, 0o4755);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('GNU tar lists and extracts the archive without complaint', () => {
  const dir = tmpdir();
  try {
    const file = path.join(dir, 'a.tar');
    fs.writeFileSync(file, archive(entries.filter((e) => e.h.type !== 'char')));
    const r = spawnSync('tar', ['-tvf', file], { encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
    assert.match(r.stdout, /1000\/1001 +5 .* dir\/hello.txt/);
    fs.mkdirSync(path.join(dir, 'x'));
    const x = spawnSync('tar', ['-xf', file, '-C', path.join(dir, 'x')], { encoding: 'utf8' });
    assert.is(x.status, 0, x.stderr);
    assert.is(fs.readFileSync(path.join(dir, 'x', longName), 'utf8'), 'abc');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the bytes are pinned: layer digests (and so image ids and cache hits) do not change across versions', () => {
  // Any change to header encoding changes every layer digest tsbuild writes, which silently breaks
  // reproducible builds and shared caches; if a change is intended, it needs a note and a new pin.
  assert.is(sha256(archive(entries)), 'sha256:be93281bc3d50d19a211d9421a2e12f792ba24afcc1b42e811e265a9ee8fcfa1');
});

test.run();
