#!/usr/bin/env node
// Parser speed: a large generated Dockerfile and the whole conformance corpus, instructions per second.
// Prints figures only; nothing here asserts a time.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDockerfile, parseAST } from '../dist/parser/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const shared = process.env.TSBUILD_SHARED ?? path.resolve(root, '../shared');

function generated(stages, perStage) {
  const out = ['# syntax=docker/dockerfile:1', 'ARG BASE=debian:12'];
  for (let s = 0; s < stages; s++) {
    out.push(`FROM \${BASE} AS s${s}`, 'ARG VERSION=1.2.3', `ENV APP_HOME=/opt/app${s} PATH=/opt/app${s}/bin:$PATH`);
    for (let i = 0; i < perStage; i++) {
      switch (i % 6) {
        case 0: out.push(`RUN apt-get update && \\\n    apt-get install -y --no-install-recommends pkg${i} \\\n    && rm -rf /var/lib/apt/lists/*`); break;
        case 1: out.push(`COPY --chown=app:app --chmod=0755 src/${i}/ /opt/app${s}/${i}/`); break;
        case 2: out.push(`RUN ["/bin/sh", "-c", "echo step ${i} > /tmp/${i}"]`); break;
        case 3: out.push(`LABEL org.example.step${i}="value ${i}" other=x`); break;
        case 4: out.push(`RUN <<EOF\nset -e\necho heredoc ${i}\nEOF`); break;
        case 5: out.push(`WORKDIR /opt/app${s}/w${i}`); break;
      }
    }
    out.push('CMD ["app", "--serve"]');
  }
  return out.join('\n') + '\n';
}

function measure(label, texts, rounds, astOnly = false) {
  const parse = astOnly ? parseAST : parseDockerfile;
  let instructions = 0;
  for (const t of texts) instructions += parseAST(t).ast.children.length;
  for (const t of texts) parse(t);
  const start = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) for (const t of texts) parse(t);
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  const bytes = texts.reduce((a, t) => a + Buffer.byteLength(t), 0);
  console.log(`${label}: ${instructions} instructions x ${rounds} rounds in ${secs.toFixed(3)} s = ${Math.round((instructions * rounds) / secs).toLocaleString()} instructions/s, ${((bytes * rounds) / secs / 1048576).toFixed(1)} MiB/s`);
}

const big = generated(50, 200);
measure('generated (50 stages x 200 instructions)', [big], 5);
const dir = path.join(shared, 'conformance/buildkit-parser/testfiles');
if (fs.existsSync(dir)) {
  const corpus = fs.readdirSync(dir).map((c) => fs.readFileSync(path.join(dir, c, 'Dockerfile'), 'utf8'));
  measure(`conformance corpus (${corpus.length} files)`, corpus, 200, true);
}
