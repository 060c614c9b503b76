/**
 * Children started through the posix_spawn addon behave as child_process's: the same battery runs
 * through both (`via: 'node'` is child_process), so a difference between them fails here.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { spawnChild, spawnMethod, type Child, type StdioKind } from './spawn.js';
import { tmpdir } from '../testutil/index.js';

const SH = '/bin/sh';
const native = spawnMethod().startsWith('posix_spawn');
const base = tmpdir('tsb-spawn-');
test.after(() => fs.rmSync(base, { recursive: true, force: true }));

/** This process's descriptors without close-on-exec. */
function inheritable(): number[] {
  return fs.readdirSync('/proc/self/fdinfo').map(Number).filter((fd) => {
    try {
      const flags = /^flags:\s+(\d+)/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
      return flags !== undefined && (parseInt(flags, 8) & 0o2000000) === 0;
    } catch {
      return false;
    }
  }).sort((a, b) => a - b);
}

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
  events: string[];
}

/** Runs to 'close', collecting stdout, stderr and the order of 'exit' and 'close'. */
function collect(child: Child, input?: string): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const o: Outcome = { code: null, signal: null, out: '', err: '', events: [] };
    child.stdout?.on('data', (d: Buffer) => (o.out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (o.err += d.toString()));
    child.on('error', reject);
    child.on('exit', () => o.events.push('exit'));
    child.on('close', (code: number | null, signal: NodeJS.Signals | null) => {
      o.events.push('close');
      resolve({ ...o, code, signal });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

for (const via of ['native', 'node'] as const) {
  const start = (file: string, args: string[], stdio: StdioKind[] = ['pipe', 'pipe', 'pipe'], env?: NodeJS.ProcessEnv) =>
    spawnChild(file, args, { stdio, env, ...(via === 'node' ? { via: 'node' as const } : {}) });
  const it = via === 'native' && !native ? (n: string) => test.skip(`${via}: ${n} (skipped: ${spawnMethod()})`) : (n: string, fn: () => Promise<void>) => test(`${via}: ${n}`, fn);

  it('stdout, stderr, stdin and the exit code; close comes after exit', async () => {
    const o = await collect(start(SH, ['-c', 'read line; echo "out:$line"; echo err >&2; exit 7']), 'hello\n');
    assert.equal([o.code, o.signal, o.out, o.err], [7, null, 'out:hello\n', 'err\n']);
    assert.equal(o.events, ['exit', 'close']);
  });

  it('a child killed by a signal reports the signal, not a code', async () => {
    const child = start('/bin/sleep', ['30']);
    const done = collect(child);
    assert.ok(child.kill('SIGKILL'));
    const o = await done;
    assert.equal([o.code, o.signal], [null, 'SIGKILL']);
    assert.not.ok(child.kill('SIGKILL'), 'an exited child is not signalled again');
  });

  it('descriptors above 2 are two-way pipes; ignore is /dev/null; nothing else leaks in', async () => {
    const child = start(SH, ['-c', 'read spec <&3; echo "got:$spec" >&3; cat; ls /proc/self/fd'], ['ignore', 'pipe', 'pipe', 'pipe']);
    const fd3 = child.stdio[3] as unknown as NodeJS.ReadWriteStream;
    let back = '';
    fd3.on('data', (d: Buffer) => (back += d.toString()));
    fd3.write('spec\n');
    const o = await collect(child);
    assert.is(back, 'got:spec\n');
    assert.is(o.code, 0);
    // 0-3, the directory ls reads, and what this process holds without close-on-exec (what started
    // the tests may pass such a descriptor down): nothing of Node's or of the spawn itself
    assert.equal(o.out.trim().split('\n').map(Number).sort((a, b) => a - b), [0, 1, 2, 3, 4, ...inheritable().filter((fd) => fd > 4)]);
  });

  it('inherit passes the parent descriptor; the environment is exactly the one given', async () => {
    const file = path.join(base, `inherit-${via}`);
    const fd = fs.openSync(file, 'w');
    try {
      // the test's own stdout is not ours to redirect: a child writing to "inherit" fd 1 is
      // checked through a shell whose stdout is that file
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', `
        const { spawnChild } = await import(${JSON.stringify(new URL('./spawn.js', import.meta.url).href)});
        const c = spawnChild('/bin/sh', ['-c', 'echo "inherited $ONLY"; env | wc -l'], { stdio: ['ignore', 'inherit', 'inherit'], env: { ONLY: 'this' }${via === 'node' ? ", via: 'node'" : ''} });
        c.on('exit', (code) => process.exit(code));
      `], { stdio: ['ignore', fd, 'inherit'] });
      assert.is(r.status, 0);
    } finally {
      fs.closeSync(fd);
    }
    // sh adds PWD (and dash nothing else): ONLY and PWD, nothing of this process's environment
    const [line, count] = fs.readFileSync(file, 'utf8').trim().split('\n');
    assert.is(line, 'inherited this');
    assert.ok(Number(count) <= 3, `environment of ${count} variables`);
  });

  it('signal dispositions and the mask are reset (Node ignores SIGPIPE; the child must not)', async () => {
    const child = start('/bin/sleep', ['30'], ['ignore', 'ignore', 'ignore']);
    const done = collect(child);
    try {
      // the child has exec'd once /proc shows sleep's name
      let status = '';
      for (let i = 0; i < 200 && !/^Name:\s+sleep$/m.test(status); i++) {
        status = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
        if (!/^Name:\s+sleep$/m.test(status)) await new Promise((r) => setTimeout(r, 5));
      }
      assert.match(status, /^SigIgn:\s+0+$/m);
      assert.match(status, /^SigBlk:\s+0+$/m);
    } finally {
      child.kill('SIGKILL');
      await done;
    }
  });

  it('a program that does not exist: streams that end, an error event with ENOENT, close with -2, no exit', async () => {
    for (const name of [path.join(base, 'no-such-program'), 'tsbuild-no-such-program']) {
      const child = start(name, []);
      const events: string[] = [];
      child.on('exit', () => events.push('exit'));
      child.stdout!.on('close', () => events.push('stdout closed'));
      const err = await new Promise<NodeJS.ErrnoException>((resolve) => child.on('error', resolve));
      assert.is(err.code, 'ENOENT', name);
      assert.is(err.errno, -2);
      const code = await new Promise((resolve) => child.on('close', resolve));
      assert.is(code, -2);
      assert.equal(events, ['stdout closed']);
      assert.not.ok(child.kill('SIGKILL'));
    }
  });

  it('a name without a slash is found on PATH and is the child\'s argv[0]', async () => {
    const o = await collect(start('sh', ['-c', 'echo "$0"']));
    assert.equal([o.code, o.out], [0, 'sh\n']);
  });

  it('an unref\'d child does not keep the process alive; ref\'d, it does', async () => {
    for (const unref of [true, false]) {
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', `
        const { spawnChild } = await import(${JSON.stringify(new URL('./spawn.js', import.meta.url).href)});
        const c = spawnChild('/bin/sleep', ['0.3'], { stdio: ['pipe', 'pipe', 'pipe']${via === 'node' ? ", via: 'node'" : ''} });
        c.on('exit', () => console.log('child exited first'));
        if (${unref}) { c.unref(); for (const s of [c.stdin, c.stdout, c.stderr]) s.unref(); }
      `], { encoding: 'utf8', timeout: 10_000 });
      assert.is(r.status, 0, r.stderr);
      assert.is(r.stdout.includes('child exited first'), !unref, unref ? 'unref: the process ends at once' : 'ref: the process waits for the child');
    }
  });
}

test('without the addon (TSBUILD_SPAWN=node) tsbuild says so and starts children through child_process', () => {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `
    const { spawnMethod } = await import(${JSON.stringify(new URL('./spawn.js', import.meta.url).href)});
    console.log(spawnMethod());
  `], { encoding: 'utf8', env: { ...process.env, TSBUILD_SPAWN: 'node' } });
  assert.match(r.stdout, /^fork \(child_process\): TSBUILD_SPAWN=node/);
});

test('where Node\'s headers are installed the addon is built and used', () => {
  const headers = path.resolve(path.dirname(process.execPath), '../include/node/node_api.h');
  if (!fs.existsSync(headers)) return;
  assert.ok(native, spawnMethod());
});

test.run();
