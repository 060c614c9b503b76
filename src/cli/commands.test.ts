/** What a Docker user types resolves to the command they mean, or to an error that says what to type. */
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tmpdir } from '../testutil/index.js';
import type { FlagSpec } from './args.js';
import { extractGlobals, resolveCommand } from './commands.js';

const known = ['build', 'run', 'images', 'inspect', 'rmi', 'ps', 'rm', 'tag', 'push', 'pull', 'prune', 'info', 'stats', 'version'];

test('management forms map to tsbuild commands', () => {
  assert.equal(resolveCommand(['image', 'ls', '-q'], known), { cmd: 'images', rest: ['-q'] });
  assert.equal(resolveCommand(['image', 'rm', 'x'], known), { cmd: 'rmi', rest: ['x'] });
  assert.equal(resolveCommand(['container', 'ls', '-a'], known), { cmd: 'ps', rest: ['-a'] });
  assert.equal(resolveCommand(['builder', 'prune', '--all'], known), { cmd: 'prune', rest: ['--all'] });
  assert.equal(resolveCommand(['system', 'info'], known), { cmd: 'info', rest: [] });
  assert.equal(resolveCommand(['image', 'prune', '-f'], known), { cmd: 'image-prune', rest: ['-f'] });
  assert.equal(resolveCommand(['image', 'load', '-i', 'x.tar'], known), { cmd: 'load', rest: ['-i', 'x.tar'] });
  assert.equal(resolveCommand(['container', 'stop', '-t', '1', 'web'], known), { cmd: 'stop', rest: ['-t', '1', 'web'] });
  assert.equal(resolveCommand(['container', 'inspect', 'web'], known), { cmd: 'inspect', rest: ['--type', 'container', 'web'] });
  assert.equal(resolveCommand(['container', 'port', 'web'], known), { cmd: 'port', rest: ['web'] });
  assert.throws(() => resolveCommand(['image'], known), /image needs a subcommand: ls, list, inspect/);
  assert.throws(() => resolveCommand(['buildx', 'ls'], known), /tsbuild has no builder instances: every build runs on this machine, in the store at --root \(tsbuild info shows it\)/);
  assert.throws(() => resolveCommand(['buildx', 'create', '--use'], known), /leave this step out of the script/);
  assert.throws(() => resolveCommand(['buildx', 'bake'], known), /run tsbuild build for each target/);
  assert.equal(resolveCommand(['builder', 'du'], known), { cmd: 'cache', rest: ['ls'] });
  assert.throws(() => resolveCommand(['system', 'nope'], known), /system needs a subcommand: info, df, prune, migrate \(got "nope"\)/);
});

test('global options before the command reach it through the environment', () => {
  const saved = { ...process.env };
  try {
    assert.equal(resolveCommand(['--root', '/tmp/s', '--snapshotter=native', '--debug', 'images'], known), { cmd: 'images', rest: [] });
    assert.is(process.env.TSBUILD_ROOT, '/tmp/s');
    assert.is(process.env.TSBUILD_SNAPSHOTTER, 'native');
    assert.is(process.env.TSBUILD_DEBUG, '1');
    assert.throws(() => resolveCommand(['--root'], known), /--root needs a value/);
  } finally {
    process.env = saved;
  }
});

test('global options after the command too, unless the command has the flag or they belong to a container command', () => {
  const saved = { ...process.env };
  const images: FlagSpec[] = [{ name: 'quiet', short: 'q', type: 'bool', help: '' }, { name: 'format', type: 'string', help: '' }];
  const build: FlagSpec[] = [{ name: 'snapshotter', type: 'string', help: '' }, { name: 'tag', short: 't', type: 'list', help: '' }];
  try {
    delete process.env.TSBUILD_DEBUG;
    assert.equal(extractGlobals(['-q', '--debug', '--format', '--debug', '--snapshotter', 'btrfs'], images), ['-q', '--format', '--debug']);
    assert.is(process.env.TSBUILD_DEBUG, '1', '--debug as a flag');
    assert.is(process.env.TSBUILD_SNAPSHOTTER, 'btrfs');
    assert.equal(extractGlobals(['--snapshotter', 'native', '-t', 'x', '.'], build), ['--snapshotter', 'native', '-t', 'x', '.'], "the command's own flag stays its own");
    assert.equal(extractGlobals(['--log-level=debug', 'img', 'sh', '--debug', '--', '-D'], images, true), ['img', 'sh', '--debug', '--', '-D'], 'after the image, words are the container command');
    assert.is(process.env.TSBUILD_LOG_LEVEL, 'debug');
    assert.equal(extractGlobals(['--log-level', 'info'], images), []);
    assert.throws(() => extractGlobals(['--log-level', 'warn'], images), /--log-level warn: tsbuild has the levels debug .* and info/);
    assert.throws(() => resolveCommand(['--log-level', 'loud', 'images'], known), /--log-level loud/);
  } finally {
    process.env = saved;
  }
});

test('build is the default verb for flags and paths; an unknown word is an error with a suggestion', () => {
  assert.equal(resolveCommand(['-t', 'x', '.'], known), { cmd: 'build', rest: ['-t', 'x', '.'] });
  assert.equal(resolveCommand(['.'], known), { cmd: 'build', rest: ['.'] });
  const d = tmpdir('tsb-cmd-');
  try {
    fs.mkdirSync(path.join(d, 'app'));
    assert.equal(resolveCommand([path.join(d, 'app')], known).cmd, 'build');
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
  assert.throws(() => resolveCommand(['imgaes'], known), /unknown command "imgaes" \(did you mean "images"\?\).*write \.\/imgaes/);
  assert.throws(() => resolveCommand(['image-ls'], known), /unknown command "image-ls"/);
});

test.run();
