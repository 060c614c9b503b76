/** Hostile symlinks in an image never lead writes out of its root. */
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirInRoot, resolveInRoot } from './inroot.js';
import { tmpdir } from '../testutil/index.js';

let root = '';
let outside = '';
test.before.each(() => {
  root = tmpdir('tsb-root-');
  outside = tmpdir('tsb-outside-');
});
test.after.each(() => {
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(outside, { recursive: true, force: true });
});

test('an absolute symlink resolves inside the root', () => {
  fs.mkdirSync(path.join(root, 'etc'));
  fs.symlinkSync('/etc', path.join(root, 'conf'));
  assert.is(resolveInRoot(root, '/conf/passwd'), path.join(root, 'etc/passwd'));
});

test('.. in paths and symlink targets cannot climb above the root', () => {
  fs.symlinkSync('../../../../..' + outside, path.join(root, 'up'));
  assert.is(resolveInRoot(root, '/../../x'), path.join(root, 'x'));
  assert.ok(resolveInRoot(root, '/up/file').startsWith(root + '/'), resolveInRoot(root, '/up/file'));
  fs.symlinkSync(outside, path.join(root, 'abs'));
  assert.is(resolveInRoot(root, '/abs/f'), path.join(root, outside, 'f'));
});

test('mkdirInRoot through a symlink to a host directory stays inside the root', () => {
  fs.symlinkSync(outside, path.join(root, 'evil'));
  const made = mkdirInRoot(root, '/evil/made');
  assert.ok(made.startsWith(root + '/'), made);
  assert.equal(fs.readdirSync(outside), [], 'the host directory is untouched');
});

test('symlink loops are an error, not a hang', () => {
  fs.symlinkSync('/b', path.join(root, 'a'));
  fs.symlinkSync('/a', path.join(root, 'b'));
  assert.throws(() => resolveInRoot(root, '/a/x'), /too many levels of symbolic links/);
});

test('the last component is not followed when asked', () => {
  fs.symlinkSync('/target', path.join(root, 'l'));
  assert.is(resolveInRoot(root, '/l', false), path.join(root, 'l'));
  assert.is(resolveInRoot(root, '/l'), path.join(root, 'target'));
});

test('mkdirInRoot refuses to turn a file into a directory', () => {
  fs.writeFileSync(path.join(root, 'file'), 'x');
  assert.throws(() => mkdirInRoot(root, '/file/sub'), /exists and is not a directory/);
});

test.run();
