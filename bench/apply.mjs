#!/usr/bin/env node
// Layer apply against GNU tar (#18: "within 1.2x GNU tar -x of the same layer in the same run"):
// tsbuild's extractTar (what a pull unpacks with) and `tar -xf` unpack the same uncompressed layer
// into a fresh directory on the same disk, interleaved (the order alternates each round), `sync`
// untimed before each, ROUNDS rounds (default 5), medians. Two layers: 20,000 small files in 100
// directories, and one 512 MiB file (SIZE_MIB changes it). Nothing is deleted until the end: on this
// VM a write to blocks freed and discarded just before is several times slower (docs/performance.md),
// and a deletion between runs would charge it to whichever tool ran next. Run as root after
// `npm run build`; asserts nothing. Prints a table and writes bench/results/<date>-<time>-apply.md.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { extractTar } from '../dist/image/index.js';

const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const rounds = Number(process.env.ROUNDS ?? 5);
const size = Number(process.env.SIZE_MIB ?? 512);
const work = fs.mkdtempSync(path.join('/var/tmp', 'tsb-apply-'));
const now = () => Number(process.hrtime.bigint()) / 1e6;
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const fmt = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);

function makeLayer(name, fill) {
  const src = path.join(work, `src-${name}`);
  fs.mkdirSync(src);
  fill(src);
  const tar = path.join(work, `${name}.tar`);
  const r = spawnSync('tar', ['--sort=name', '-C', src, '-cf', tar, '.']);
  if (r.status !== 0) throw new Error(`tar -c: ${r.stderr}`);
  fs.rmSync(src, { recursive: true, force: true });
  return tar;
}

const layers = {
  'files20k': makeLayer('files20k', (d) => {
    for (let i = 0; i < 20000; i++) {
      const dir = path.join(d, `d${i % 100}`);
      if (i < 100) fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, `f${i}`), `${i}\n`);
    }
  }),
  [`one ${size} MiB file`]: makeLayer('big', (d) => {
    const fd = fs.openSync(path.join(d, 'big'), 'w');
    for (let i = 0; i < size; i++) fs.writeSync(fd, crypto.randomBytes(1 << 20));
    fs.closeSync(fd);
  }),
};

const tools = {
  // Read as tsbuild reads a layer (store.openBlob, the pull's follower: 1 MiB at a time). With the
  // stream's 64 KiB default, one read in flight on the thread pool, the reads alone took a 512 MiB
  // layer on a tmpfs 1.05 s against 0.50 s (GNU tar 0.44 s): the input, not the apply.
  tsbuild: async (tar, dest) => {
    await extractTar(fs.createReadStream(tar, { highWaterMark: 1 << 20 }), dest, { whiteouts: true });
  },
  'GNU tar': async (tar, dest) => {
    const r = spawnSync('tar', ['-C', dest, '-xf', tar]);
    if (r.status !== 0) throw new Error(`tar -x: ${r.stderr}`);
  },
};

const samples = {};
let n = 0;
try {
  for (let round = 1; round <= rounds; round++) {
    console.log(`round ${round} of ${rounds}`);
    for (const [layer, tar] of Object.entries(layers)) {
      const order = round % 2 ? Object.keys(tools) : Object.keys(tools).reverse();
      for (const tool of order) {
        const dest = path.join(work, `out-${n++}`);
        fs.mkdirSync(dest);
        spawnSync('sync');
        const t = now();
        await tools[tool](tar, dest);
        ((samples[layer] ??= {})[tool] ??= []).push(now() - t);
      }
    }
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}

const lines = [
  `# Layer apply: tsbuild against GNU tar, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
  '',
  `${os.cpus().length} × ${os.cpus()[0]?.model.split(' ').slice(0, 2).join(' ')}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}, Node ${process.version}. Medians of ${rounds} interleaved rounds (min-max), uncompressed layers, into a fresh directory on /var/tmp.`,
  '',
  '| layer | tsbuild | GNU tar -x | tsbuild / tar |',
  '|---|---|---|---|',
];
for (const [layer, s] of Object.entries(samples)) {
  const a = s.tsbuild, b = s['GNU tar'];
  lines.push(`| ${layer} | ${fmt(median(a))} (${fmt(Math.min(...a))}-${fmt(Math.max(...a))}) | ${fmt(median(b))} (${fmt(Math.min(...b))}-${fmt(Math.max(...b))}) | ${(median(a) / median(b)).toFixed(2)}× |`);
}
const out = path.join(here, 'bench/results', `${new Date().toISOString().slice(0, 16).replace(/[-:]/g, '').replace('T', '-').replace(/^(\d{4})(\d{2})(\d{2})/, '$1-$2-$3')}-apply.md`);
fs.writeFileSync(out, lines.join('\n') + '\n');
console.log(`\n${lines.join('\n')}\n\nwritten to ${path.relative(here, out)}`);
