import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ghData, ghProperty, githubRenderer, jsonRenderer } from './progress-ci.js';
import type { SolverEvent, Vertex } from '../app/index.js';

const v = (name: string, line?: number): Vertex => ({ digest: `sha256:${name}`, name, op: {}, inputs: [], meta: { stage: 'build', stepId: 1, ...(line ? { line } : {}) } });
const sink = () => {
  let text = '';
  return { out: { write: (s: string) => (text += s) }, text: () => text };
};

function run(events: SolverEvent[], r: ReturnType<typeof jsonRenderer>): void {
  for (const e of events) r.event(e);
  r.warn('unused build arg X', 4);
  r.finish();
}

const a = v('[build 1/2] RUN make', 3);
const b = v('[build 2/2] COPY . /src', 5);
const events: SolverEvent[] = [
  { type: 'start', vertex: a, time: 1000 },
  { type: 'start', vertex: b, time: 1001 },
  { type: 'log', vertex: a, stream: 'stdout', data: Buffer.from('cc -o x\n'), time: 1100 },
  { type: 'cache', vertex: b, time: 1101, key: 'k', hit: true, material: {} },
  { type: 'done', vertex: b, time: 1102, duration: 1, cached: true },
  { type: 'cache', vertex: a, time: 1103, key: 'k2', hit: false, reason: '1 file changed: main.c', material: {} },
  { type: 'error', vertex: a, time: 1500, error: new Error('exit code 2: make failed\nsecond line') },
];

test('json: one parseable event per line, stable types, numbered vertices with their line', () => {
  const s = sink();
  run(events, jsonRenderer(s.out));
  const lines = s.text().trim().split('\n').map((l) => JSON.parse(l) as { type: string; vertex?: { id: number; line?: number; stage?: string }; [k: string]: unknown });
  assert.equal(lines.map((l) => l.type), ['vertex.started', 'vertex.started', 'vertex.log', 'vertex.cache_hit', 'vertex.completed', 'vertex.cache_miss', 'vertex.error', 'warning', 'build.solved']);
  assert.equal(lines[0]!.vertex, { id: 1, digest: 'sha256:[build 1/2] RUN make', name: '[build 1/2] RUN make', stage: 'build', line: 3 });
  assert.is(lines[1]!.vertex!.id, 2);
  assert.is(lines[2]!['data'], 'cc -o x\n');
  assert.is(lines[4]!['cached'], true);
  assert.is(lines[5]!['reason'], '1 file changed: main.c');
  assert.is(lines[6]!['error'], 'exit code 2: make failed\nsecond line');
  assert.is(lines[0]!['time'], new Date(1000).toISOString());
});

test('github: a group per step when it ends, an error annotation on the Dockerfile line, escaped', () => {
  const s = sink();
  run(events, githubRenderer(s.out, 'app/Dockerfile'));
  assert.is(
    s.text(),
    '::group::#2 [build 2/2] COPY . /src (CACHED)\n::endgroup::\n' +
      '::group::#1 [build 1/2] RUN make (ERROR)\ncc -o x\ncache miss: 1 file changed: main.c\n::endgroup::\n' +
      '::error file=app/Dockerfile,line=3,title=[build 1/2] RUN make::exit code 2: make failed%0Asecond line\n' +
      '::warning file=app/Dockerfile,line=4::unused build arg X\n',
  );
  assert.is(ghData('50% a\r\nb'), '50%25 a%0D%0Ab');
  assert.is(ghProperty('C:\\a,b'), 'C%3A\\a%2Cb');
});

test.run();
