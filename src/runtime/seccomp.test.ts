/**
 * The seccomp compiler, proven by running its BPF output in a small classic-BPF interpreter: the
 * default profile's decisions for real syscalls, arguments, capabilities and architectures.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compileSeccomp, defaultSeccompProfile, parseProfile, SeccompError, type BpfInsn, type SeccompProfile } from './seccomp.js';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../testutil/index.js';

const tables = JSON.parse(readFileSync(path.join(repoRoot, 'src/runtime/profiles/syscalls.json'), 'utf8')) as Record<string, Record<string, number>>;
const AUDIT = { x86_64: 0xc000003e, x86: 0x40000003, aarch64: 0xc00000b7 };

/** Runs a seccomp program on seccomp_data {nr, arch, args}; returns the action word. */
function run(prog: BpfInsn[], arch: number, nr: number, args: bigint[] = []): number {
  const word = (off: number): number => {
    if (off === 0) return nr >>> 0;
    if (off === 4) return arch >>> 0;
    const i = Math.floor((off - 16) / 8);
    const v = BigInt.asUintN(64, args[i] ?? 0n);
    return Number((off - 16) % 8 === 0 ? v & 0xffffffffn : v >> 32n);
  };
  let a = 0;
  for (let pc = 0; pc < prog.length; ) {
    const [code, jt, jf, k] = prog[pc]!;
    switch (code) {
      case 0x20: a = word(k); pc++; break;
      case 0x54: a = (a & k) >>> 0; pc++; break;
      case 0x05: pc += 1 + k; break;
      case 0x15: pc += 1 + (a === k ? jt : jf); break;
      case 0x25: pc += 1 + (a > k ? jt : jf); break;
      case 0x35: pc += 1 + (a >= k ? jt : jf); break;
      case 0x06: return k;
      default: throw new Error(`unknown opcode ${code}`);
    }
  }
  throw new Error('fell off the end');
}

const ALLOW = 0x7fff0000, EPERM = 0x00050001, ENOSYS = 0x00050026, KILL = 0x80000000;
const DOCKER_CAPS = new Set(['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_NET_RAW', 'CAP_SYS_CHROOT', 'CAP_MKNOD', 'CAP_AUDIT_WRITE', 'CAP_SETFCAP']);
const prog = compileSeccomp(defaultSeccompProfile(), { caps: DOCKER_CAPS, hostArch: 'x64', kernel: '6.1' });
const x64 = (name: string, args: bigint[] = []) => run(prog, AUDIT.x86_64, tables['x86_64']![name]!, args);

test('the default profile allows ordinary syscalls and denies the dangerous ones with EPERM', () => {
  for (const s of ['read', 'write', 'openat', 'execve', 'mmap', 'clone', 'wait4', 'chroot', 'ptrace']) assert.is(x64(s), ALLOW, s);
  for (const s of ['keyctl', 'add_key', 'mount', 'umount2', 'unshare', 'setns', 'reboot', 'init_module', 'kexec_load', 'open_by_handle_at', 'bpf', 'swapon', 'userfaultfd']) assert.is(x64(s), EPERM, s);
});

test('conditional rules: clone namespace flags, personality values, AF_VSOCK, clone3', () => {
  const CLONE_NEWUSER = 0x10000000n, CLONE_NEWNS = 0x00020000n, SIGCHLD = 17n, CLONE_THREAD = 0x10000n;
  assert.is(x64('clone', [SIGCHLD | CLONE_THREAD]), ALLOW);
  assert.is(x64('clone', [SIGCHLD | CLONE_NEWUSER]), EPERM);
  assert.is(x64('clone', [CLONE_NEWNS]), EPERM);
  assert.is(x64('clone', [(1n << 40n) | SIGCHLD]), ALLOW, 'high bits outside the mask do not matter');
  for (const v of [0n, 8n, 0x20000n, 0x20008n, 0xffffffffn]) assert.is(x64('personality', [v]), ALLOW, `personality ${v}`);
  assert.is(x64('personality', [0x0200n]), EPERM);
  assert.is(x64('socket', [2n]), ALLOW);
  assert.is(x64('socket', [40n]), EPERM);
  assert.is(x64('socket', [40n | (1n << 32n)]), ALLOW, 'the comparison is 64 bits wide');
  assert.is(x64('clone3'), ENOSYS, 'clone3 says ENOSYS so libc falls back to clone');
});

test('capabilities open their syscalls, as in Docker', () => {
  const admin = compileSeccomp(defaultSeccompProfile(), { caps: new Set([...DOCKER_CAPS, 'CAP_SYS_ADMIN', 'CAP_SYS_TIME']), hostArch: 'x64', kernel: '6.1' });
  const t = tables['x86_64']!;
  assert.is(run(admin, AUDIT.x86_64, t['mount']!), ALLOW);
  assert.is(run(admin, AUDIT.x86_64, t['clone']!, [0x10000000n]), ALLOW);
  assert.is(run(admin, AUDIT.x86_64, t['clone3']!), ALLOW);
  assert.is(run(admin, AUDIT.x86_64, t['settimeofday']!), ALLOW);
  assert.is(x64('settimeofday'), EPERM);
});

test('x32 and i386 are filtered with their own numbers; other architectures are killed', () => {
  assert.is(run(prog, AUDIT.x86_64, tables['x32']!['read']!), ALLOW);
  assert.is(run(prog, AUDIT.x86_64, tables['x32']!['keyctl']!), EPERM);
  assert.is(run(prog, AUDIT.x86, tables['x86']!['socketcall']!), ALLOW);
  assert.is(run(prog, AUDIT.x86, tables['x86']!['mount']!), EPERM);
  assert.is(run(prog, AUDIT.aarch64, 63), KILL);
});

test('a profile of our own: default allow, comparisons, and errors that name the problem', () => {
  const p: SeccompProfile = {
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [
      { names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 },
      { names: ['kill'], action: 'SCMP_ACT_ERRNO', args: [{ index: 1, value: 9, op: 'SCMP_CMP_GE' }, { index: 1, value: 15, op: 'SCMP_CMP_LE' }] },
      { names: ['lseek'], action: 'SCMP_ACT_ERRNO', args: [{ index: 2, value: 1, op: 'SCMP_CMP_LT' }] },
      { names: ['dup'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 100, op: 'SCMP_CMP_GT' }] },
    ],
  };
  const g = compileSeccomp(p, { caps: new Set(), hostArch: 'x64' });
  const t = tables['x86_64']!;
  assert.is(run(g, AUDIT.x86_64, t['mkdir']!), 0x0005000d);
  assert.is(run(g, AUDIT.x86_64, t['getpid']!), ALLOW);
  assert.is(run(g, AUDIT.x86_64, t['kill']!, [1n, 9n]), EPERM);
  assert.is(run(g, AUDIT.x86_64, t['kill']!, [1n, 15n]), EPERM);
  assert.is(run(g, AUDIT.x86_64, t['kill']!, [1n, 8n]), ALLOW);
  assert.is(run(g, AUDIT.x86_64, t['kill']!, [1n, 16n]), ALLOW);
  assert.is(run(g, AUDIT.x86_64, t['lseek']!, [3n, 0n, 0n]), EPERM);
  assert.is(run(g, AUDIT.x86_64, t['lseek']!, [3n, 0n, 1n]), ALLOW);
  assert.is(run(g, AUDIT.x86_64, t['dup']!, [101n]), EPERM);
  assert.is(run(g, AUDIT.x86_64, t['dup']!, [100n]), ALLOW);
  assert.throws(() => parseProfile('{', 'p.json'), (e: unknown) => e instanceof SeccompError && /p\.json is not valid JSON/.test(e.message));
  assert.throws(() => parseProfile('{"defaultAction":"SCMP_ACT_NOPE"}', 'p.json'), /unknown defaultAction "SCMP_ACT_NOPE"/);
  assert.throws(() => parseProfile('{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"SCMP_ACT_NOTIFY"}]}', 'p.json'), /notify needs a listener/);
  assert.throws(() => parseProfile('{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"SCMP_ACT_ALLOW","args":[{"index":7,"value":1,"op":"SCMP_CMP_EQ"}]}]}', 'p.json'), /argument index 7/);
  assert.throws(() => compileSeccomp(p, { caps: new Set(), hostArch: 'riscv64' }), /seccomp=unconfined/);
});

test('the default profile fits the kernel limit', () => {
  assert.ok(prog.length < 4096, `${prog.length} instructions`);
});

test.run();
