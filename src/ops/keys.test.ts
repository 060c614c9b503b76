/** Per-op cache-key material: every field of every op kind changes the key; history never does. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { digestOf } from '../cache/index.js';
import { KEY_EXCLUDED, KEY_MATERIAL, opMaterial } from './keys.js';
import type { OpSpec } from './types.js';

const history = [{ created_by: 'ENV X=1', empty_layer: true }];

/** One op of every cached kind, every optional field unset (so setting it is a change too). */
const samples: OpSpec[] = [
  { kind: 'scratch' },
  { kind: 'image', name: 'localhost:5000/base:1', manifestDigest: 'sha256:' + 'a'.repeat(64) },
  { kind: 'context', dir: '/ctx', ignore: ['*.log'] },
  {
    kind: 'exec', args: ['/bin/sh', '-c', 'make'], env: ['PATH=/bin', 'VERSION=1.2'], cwd: '/src', user: 'app', network: 'host', hostname: 'tsbuild',
    history, createdBy: 'RUN make', files: [{ path: '/dev/pipes/x', data: '#!/bin/sh', mode: 0o755 }], argNames: ['VERSION'],
    mounts: [{ type: 'cache', target: '/root/.cache', id: 'c', sharing: 'shared', source: '', mode: 0o755, uid: 0, gid: 0, ro: false }], insecure: false,
  },
  {
    kind: 'copy', sources: ['src/'], contents: [{ path: 'f', data: 'x' }], dest: '/app/', fromContext: true, excludes: ['*.md'], history, createdBy: 'COPY src/ /app/',
    verb: 'ADD', parents: false, link: false,
  },
  { kind: 'mkdir', path: '/w', user: 'app', history, createdBy: 'WORKDIR /w' },
];

/** A different value of the same shape: strings grow, numbers count, booleans flip, unset becomes set. */
function mutate(v: unknown): unknown {
  if (typeof v === 'string') return v + 'x';
  if (typeof v === 'number') return v + 1;
  if (typeof v === 'boolean') return !v;
  if (v === undefined) return 'x';
  if (Array.isArray(v)) return v.length ? [mutate(v[0]), ...v.slice(1)] : ['x'];
  if (typeof v === 'object' && v !== null) {
    const [k] = Object.keys(v);
    return { ...v, [k!]: mutate((v as Record<string, unknown>)[k!]) };
  }
  throw new Error(`cannot mutate ${String(v)}`);
}

const key = (op: OpSpec) => digestOf(opMaterial(op)!);

for (const op of samples) {
  const table = KEY_MATERIAL[op.kind] as Record<string, unknown>;

  test(`${op.kind}: every spec field is declared in the key table or excluded by name`, () => {
    for (const f of Object.keys(op)) {
      if (f === 'kind' || (KEY_EXCLUDED as readonly string[]).includes(f)) continue;
      assert.ok(f in table, `${op.kind}.${f} is neither in KEY_MATERIAL nor in KEY_EXCLUDED`);
    }
  });

  test(`${op.kind}: a change of any field changes the key`, () => {
    const base = key(op);
    for (const f of Object.keys(table)) {
      const changed = { ...op, [f]: mutate((op as Record<string, unknown>)[f]) } as OpSpec;
      assert.is.not(key(changed), base, `${op.kind}.${f} changed but the key did not`);
    }
  });

  test(`${op.kind}: history and created-by never change the key`, () => {
    if (!('history' in op)) return;
    const changed = { ...op, history: [{ created_by: 'something else' }], createdBy: 'other' } as OpSpec;
    assert.is(key(changed), key(op));
  });
}

test('ops of different kinds never share a key, and export is never cached', () => {
  const keys = samples.map(key);
  assert.is(new Set(keys).size, keys.length);
  assert.is(opMaterial({ kind: 'export', config: { architecture: 'amd64', os: 'linux', config: {} }, names: [], history: [] }), undefined);
});

test('material names say what changed: variables, mounts and fields by name', () => {
  const exec = samples[3] as Extract<OpSpec, { kind: 'exec' }>;
  const m = opMaterial(exec)!;
  assert.is(m['arg:VERSION'], '1.2');
  assert.is(m['env:PATH'], '/bin');
  assert.ok(m['mount:0']);
  assert.is(m['op:cwd'], '"/src"');
  assert.not.ok(Object.keys(m).some((k) => k.includes('history') || k.includes('createdBy')));
});

test.run();
