import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LogWriter, readLogs, type LogEntry } from './logs.js';

function dir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'tsb-logs-'));
}
async function all(it: AsyncGenerator<LogEntry>): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for await (const e of it) out.push(e);
  return out;
}

test('lines are split per stream, partial lines wait for their end, flush writes the rest', async () => {
  const d = dir();
  try {
    const f = path.join(d, 'ctr.log');
    const w = new LogWriter(f);
    w.write('stdout', Buffer.from('one\ntw'));
    w.write('stderr', Buffer.from('err\n'));
    w.write('stdout', Buffer.from('o\nthree'));
    w.close();
    const e = await all(readLogs(f));
    assert.equal(e.map((x) => [x.stream, x.log]), [['stdout', 'one\n'], ['stderr', 'err\n'], ['stdout', 'two\n'], ['stdout', 'three']]);
    for (const x of e) assert.ok(!Number.isNaN(Date.parse(x.time)));
    assert.equal((await all(readLogs(f, { tail: 2 }))).map((x) => x.log), ['two\n', 'three']);
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test('rotation keeps max-file files of at most max-size bytes; reading starts with the oldest', async () => {
  const d = dir();
  try {
    const f = path.join(d, 'ctr.log');
    const w = new LogWriter(f, { maxSize: 1000, maxFile: 3 });
    for (let i = 0; i < 200; i++) w.write('stdout', Buffer.from(`line ${i}\n`));
    w.close();
    assert.ok(fs.existsSync(`${f}.1`) && fs.existsSync(`${f}.2`));
    assert.not.ok(fs.existsSync(`${f}.3`));
    for (const x of [f, `${f}.1`, `${f}.2`]) assert.ok(fs.statSync(x).size <= 1000, `${x} is within max-size`);
    const lines = (await all(readLogs(f))).map((x) => x.log);
    assert.is(lines.at(-1), 'line 199\n');
    assert.not.ok(lines.includes('line 0\n'), 'the oldest lines are gone');
    const nums = lines.map((l) => Number(l.split(' ')[1]));
    assert.equal(nums, [...nums].sort((a, b) => a - b), 'in order across files');
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test('a very long line is cut into 16 KiB entries; a torn last line (a crash) is skipped', async () => {
  const d = dir();
  try {
    const f = path.join(d, 'ctr.log');
    const w = new LogWriter(f);
    w.write('stdout', Buffer.alloc(40 * 1024, 'a'));
    w.write('stdout', Buffer.from('\n'));
    w.close();
    fs.appendFileSync(f, '{"log":"torn');
    const e = await all(readLogs(f));
    assert.equal(e.map((x) => x.log.length), [16384, 16384, 8193]);
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test('since/until, and follow: new entries as they come, across a rotation, until done', async () => {
  const d = dir();
  try {
    const f = path.join(d, 'ctr.log');
    const w = new LogWriter(f, { maxSize: 300, maxFile: 2 });
    w.write('stdout', Buffer.from('old\n'));
    const t = Date.now() + 5;
    await new Promise((r) => setTimeout(r, 20));
    w.write('stdout', Buffer.from('new\n'));
    assert.equal((await all(readLogs(f, { since: t }))).map((x) => x.log), ['new\n']);
    assert.equal((await all(readLogs(f, { until: t }))).map((x) => x.log), ['old\n']);
    let done = false;
    const got: string[] = [];
    const reader = (async () => {
      for await (const e of readLogs(f, { follow: { done: () => done, pollMs: 10 } })) got.push(e.log);
    })();
    await new Promise((r) => setTimeout(r, 30));
    for (let i = 0; i < 8; i++) {
      w.write('stdout', Buffer.from(`more ${i}\n`));
      await new Promise((r) => setTimeout(r, 15));
    }
    w.close();
    await new Promise((r) => setTimeout(r, 30));
    done = true;
    await reader;
    assert.equal(got.slice(0, 2), ['old\n', 'new\n']);
    assert.equal(got.slice(2), Array.from({ length: 8 }, (_, i) => `more ${i}\n`), 'every followed line once, in order, rotation included');
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test.run();
