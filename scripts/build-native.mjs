#!/usr/bin/env node
// Compiles the sandbox helper with the system C compiler at install time.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'native/build/tsbuild-sandbox');
const srcs = ['native/sandbox.c', 'native/json.c'].map((s) => path.join(root, s));
if (fs.existsSync(out) && srcs.every((s) => fs.statSync(s).mtimeMs < fs.statSync(out).mtimeMs)) process.exit(0);
const cc = process.env.CC || 'cc';
fs.mkdirSync(path.dirname(out), { recursive: true });
const r = spawnSync(cc, ['-O2', '-Wall', '-Wextra', '-std=gnu11', '-o', out + '.tmp', ...srcs], { stdio: 'inherit' });
if (r.error) {
  console.error(`tsbuild: cannot compile the sandbox helper: C compiler "${cc}" not found (${r.error.message}).\n` +
    'Install one (Debian: apt-get install -y gcc libc6-dev) or set CC, then run npm ci again.');
  process.exit(1);
}
if (r.status !== 0) {
  console.error('tsbuild: compiling native/sandbox.c failed; see the compiler output above.');
  process.exit(1);
}
fs.renameSync(out + '.tmp', out);
