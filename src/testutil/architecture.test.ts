/**
 * The module graph of docs/architecture.md, enforced: which module may import which (nothing imports
 * upward, so there are no cycles), imports across modules go through a module's door (its index.ts),
 * and no source file grows past the size the design asks for.
 */
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { repoRoot } from './index.js';

/** Who may import whom (production code). Tests may also import their own module's files and testutil. */
const ALLOWED: Record<string, string[]> = {
  errors: [],
  fsutil: ['errors'],
  parser: ['errors'],
  builder: ['errors'],
  image: ['errors', 'fsutil'],
  snapshotter: ['errors', 'fsutil'],
  cache: ['errors', 'fsutil', 'image'],
  opspec: ['image'],
  runtime: ['errors', 'fsutil', 'image', 'snapshotter'],
  registry: ['errors', 'fsutil', 'image'],
  store: ['errors', 'fsutil', 'image', 'snapshotter', 'runtime', 'registry', 'cache'],
  ops: ['errors', 'fsutil', 'builder', 'cache', 'image', 'opspec', 'parser', 'runtime', 'snapshotter', 'store'],
  planner: ['errors', 'builder', 'image', 'opspec', 'parser'],
  app: ['errors', 'fsutil', 'builder', 'cache', 'image', 'opspec', 'ops', 'parser', 'planner', 'registry', 'runtime', 'snapshotter', 'store'],
  cli: ['app', 'errors'],
  testutil: ['image'],
};

const src = path.join(repoRoot, 'src');
const modules = fs.readdirSync(src, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
const isTest = (f: string) => f.endsWith('.test.ts') || f.endsWith('.fixture.ts') || f === 'testsuite.ts';

interface Edge { from: string; file: string; to: string; target: string }

function edges(): Edge[] {
  const out: Edge[] = [];
  for (const m of modules) {
    for (const f of fs.readdirSync(path.join(src, m)).filter((x) => x.endsWith('.ts'))) {
      const text = fs.readFileSync(path.join(src, m, f), 'utf8');
      for (const [, target] of text.matchAll(/(?:^|\n)\s*(?:import|export)[^'";]*?from\s+'(\.\.\/[^']+)'/g)) {
        const to = target!.split('/')[1]!;
        out.push({ from: m, file: f, to, target: target! });
      }
    }
  }
  return out;
}

test('every module is in the layering table', () => {
  for (const m of modules) assert.ok(m in ALLOWED, `src/${m} is not in ALLOWED: place it in the module graph (docs/architecture.md)`);
});

test('production code imports only the modules below it', () => {
  const bad = edges().filter((e) => !isTest(e.file) && !(ALLOWED[e.from] ?? []).includes(e.to));
  assert.equal(bad.map((e) => `src/${e.from}/${e.file} imports ${e.target}`), []);
});

/** Everything a module stands on, directly or not. */
function below(m: string, acc = new Set<string>()): Set<string> {
  for (const d of ALLOWED[m] ?? []) if (!acc.has(d)) below(d, acc.add(d));
  return acc;
}

test('tests import only modules below theirs (at any depth), and testutil', () => {
  const bad = edges().filter((e) => isTest(e.file) && e.to !== 'testutil' && !below(e.from).has(e.to));
  assert.equal(bad.map((e) => `src/${e.from}/${e.file} imports ${e.target}`), []);
});

test('the graph has no cycle', () => {
  const seen = new Set<string>();
  const stack: string[] = [];
  const visit = (m: string) => {
    if (stack.includes(m)) assert.unreachable(`cycle: ${[...stack.slice(stack.indexOf(m)), m].join(' -> ')}`);
    if (seen.has(m)) return;
    stack.push(m);
    for (const d of ALLOWED[m] ?? []) visit(d);
    stack.pop();
    seen.add(m);
  };
  for (const m of Object.keys(ALLOWED)) visit(m);
});

test('other modules are reached through their door (index.ts)', () => {
  const bad = edges().filter((e) => !/^\.\.\/[a-z]+\/index\.js$/.test(e.target));
  assert.equal(bad.map((e) => `src/${e.from}/${e.file} imports ${e.target}`), []);
});

test('no source file over 400 lines', () => {
  const long: string[] = [];
  for (const m of modules) {
    for (const f of fs.readdirSync(path.join(src, m)).filter((x) => x.endsWith('.ts'))) {
      const n = fs.readFileSync(path.join(src, m, f), 'utf8').split('\n').length;
      if (n > 400) long.push(`src/${m}/${f}: ${n} lines`);
    }
  }
  assert.equal(long, []);
});

test.run();
