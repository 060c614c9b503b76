/** Joining a directory and an entry's name: the same path as path.join gives, fast or not. */
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { joinHost } from './copysource.js';

test('joinHost gives path.join\'s path for every directory form and name; bytes where a name is not UTF-8', () => {
  const dirs = ['/a/b', '/', '/a/b/', 'a/b', '.', '/a/./b', '/a/../b', '/a//b', '/a/.git', '/a/b.c', '/a/...', '/x y/é', '/a/b/..', '//a'];
  const names = ['f', '..f', '.hidden', 'é', 'a b', '...'];
  for (const d of dirs) for (const n of names) assert.is(joinHost(d, { name: n }), path.join(d, n), `${d} + ${n}`);
  const raw = Buffer.from([0xff, 0x41]);
  assert.ok((joinHost('/a', { name: raw.toString('utf8'), raw }) as Buffer).equals(Buffer.concat([Buffer.from('/a/'), raw])));
});

test.run();
