#!/usr/bin/env node
// Compiles the sandbox helper with the system C compiler at install time, and the four addons
// (native/spawn.c, native/pagecache.c, native/files.c, native/mounts.c) when Node's headers are
// installed; without them tsbuild starts its helper through child_process (src/runtime/spawn.ts),
// gives no page cache advice, makes a layer's small files one by one through Node and mounts through
// the helper's serve process.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cc = process.env.CC || 'cc';
const fresh = (out, srcs) => fs.existsSync(out) && srcs.every((s) => fs.statSync(s).mtimeMs < fs.statSync(out).mtimeMs);

function compile(out, srcs, flags) {
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const r = spawnSync(cc, [...flags, '-o', out + '.tmp', ...srcs], { stdio: 'inherit' });
  if (r.error) {
    console.error(`tsbuild: cannot compile ${path.relative(root, srcs[0])}: C compiler "${cc}" not found (${r.error.message}).\n` +
      'Install one (Debian: apt-get install -y gcc libc6-dev) or set CC, then run npm ci again.');
    return false;
  }
  if (r.status !== 0) {
    console.error(`tsbuild: compiling ${path.relative(root, srcs[0])} failed; see the compiler output above.`);
    return false;
  }
  fs.renameSync(out + '.tmp', out);
  return true;
}

const helper = path.join(root, 'native/build/tsbuild-sandbox');
const helperSrcs = ['native/sandbox.c', 'native/json.c'].map((s) => path.join(root, s));
// Headers count for freshness; the compiler is given only the .c files.
const deps = ['native/json.h', 'native/xattrs.h', 'native/napierr.h'].map((s) => path.join(root, s));
if (!fresh(helper, [...helperSrcs, ...deps]) && !compile(helper, helperSrcs, ['-O2', '-Wall', '-Wextra', '-std=gnu11'])) process.exit(1);

// The addons: spawn (posix_spawn for Node), pagecache (writeback started behind large streamed
// writes, a followed download's pages dropped once read), files (small files made in batches) and
// mounts (host mounts and xattr listings without a helper process). Node's own headers: beside its binary (/usr/bin/node -> /usr/include/node, as
// distributions and Node's tarballs install them).
const headers = path.resolve(path.dirname(process.execPath), '../include/node');
const addons = [
  ['spawn', 'the helper starts through child_process (a fork of Node, 5-10 ms more per container and COPY)'],
  ['pagecache', 'a pulled blob keeps its page cache until the kernel reclaims it, and a stored blob is written back only at its fsync'],
  ['files', 'layers are applied through Node\'s fs calls, one binding call per system call (slower for many small files)'],
  ['mounts', 'host mounts and xattr listings go through the helper\'s serve process (8-10 ms more for the first of each build or pull)'],
];
for (const [name, without] of addons) {
  const addon = path.join(root, `native/build/tsbuild-${name}.node`);
  const src = path.join(root, `native/${name}.c`);
  if (fresh(addon, [src, ...deps])) continue;
  if (!fs.existsSync(path.join(headers, 'node_api.h'))) {
    fs.rmSync(addon, { force: true });
    console.error(`tsbuild: Node's headers are not in ${headers}: the ${name} addon is not built, and ${without}. See docs/performance.md.`);
  } else if (!compile(addon, [src], ['-O2', '-Wall', '-Wextra', '-std=gnu11', '-shared', '-fPIC', '-fvisibility=hidden', `-I${headers}`])) {
    fs.rmSync(addon, { force: true });
    console.error(`tsbuild: the ${name} addon did not build: ${without}.`);
  }
}
