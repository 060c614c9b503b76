/**
 * The device allow-list on cgroup v2, where there is no devices controller: an eBPF program of type
 * BPF_PROG_TYPE_CGROUP_DEVICE, attached to the container's cgroup, that the kernel runs on every open
 * and mknod of a device node (as runc's devicefilter does). Compiled here from the same rules the v1
 * devices controller takes; the helper only loads and attaches it. Deny unless a rule allows.
 *
 * The context (linux/bpf.h, struct bpf_cgroup_dev_ctx): u32 access_type at 0 (device type in the low
 * 16 bits: block 1, char 2; access in the high 16: mknod 1, read 2, write 4), u32 major at 4, u32 minor
 * at 8. Return 1 to allow, 0 to deny.
 */
import type { DeviceRule } from './cgroups.js';

/** One eBPF instruction: [opcode, dst_reg, src_reg, off, imm]. */
export type EbpfInsn = [number, number, number, number, number];

// linux/bpf_common.h and linux/bpf.h opcodes.
const LDXW = 0x61, AND64K = 0x57, RSH64K = 0x77, MOV64X = 0xbf, MOV64K = 0xb7, JNEK = 0x55, JSETK = 0x45, EXIT = 0x95;
const TYPE: Record<string, number> = { b: 1, c: 2 };
const ACCESS: Record<string, number> = { m: 1, r: 2, w: 4 };

/** r2 = device type, r3 = access, r4 = major, r5 = minor; then one block per rule; deny at the end. */
export function deviceProgram(rules: DeviceRule[]): EbpfInsn[] {
  const out: EbpfInsn[] = [
    [LDXW, 2, 1, 0, 0],
    [AND64K, 2, 0, 0, 0xffff],
    [LDXW, 3, 1, 0, 0],
    [RSH64K, 3, 0, 0, 16],
    [LDXW, 4, 1, 4, 0],
    [LDXW, 5, 1, 8, 0],
  ];
  for (const r of rules) {
    const allowed = [...r.access].reduce((a, c) => a | (ACCESS[c] ?? 0), 0);
    const checks: EbpfInsn[] = [];
    if (r.type !== 'a') checks.push([JNEK, 2, 0, 0, TYPE[r.type]!]);
    // Every access asked for must be allowed: any bit outside the rule's set skips the rule.
    if (allowed !== 7) checks.push([JSETK, 3, 0, 0, ~allowed & 7]);
    if (r.major !== '*') checks.push([JNEK, 4, 0, 0, r.major]);
    if (r.minor !== '*') checks.push([JNEK, 5, 0, 0, r.minor]);
    const block: EbpfInsn[] = [...checks, [MOV64K, 0, 0, 0, 1], [EXIT, 0, 0, 0, 0]];
    // Each check jumps past the rest of its block (to the next rule) when it does not hold.
    checks.forEach((c, i) => (c[3] = block.length - i - 1));
    out.push(...block);
  }
  out.push([MOV64K, 0, 0, 0, 0], [EXIT, 0, 0, 0, 0]);
  return out;
}

/** Runs the program on one access, as the kernel would (for tests and for explaining a denial). */
export function allows(prog: EbpfInsn[], type: 'b' | 'c', access: string, major: number, minor: number): boolean {
  const ctx = [((([...access].reduce((a, c) => a | (ACCESS[c] ?? 0), 0)) << 16) | TYPE[type]!) >>> 0, major, minor];
  const r = new Array<number>(11).fill(0);
  for (let pc = 0; pc < prog.length; pc++) {
    const [op, dst, src, off, imm] = prog[pc]!;
    switch (op) {
      case LDXW: r[dst] = ctx[off / 4]!; break;
      case AND64K: r[dst] = (r[dst]! & imm) >>> 0; break;
      case RSH64K: r[dst] = r[dst]! >>> imm; break;
      case MOV64X: r[dst] = r[src]!; break;
      case MOV64K: r[dst] = imm; break;
      case JNEK: if (r[dst] !== imm) pc += off; break;
      case JSETK: if ((r[dst]! & imm) !== 0) pc += off; break;
      case EXIT: return r[0] === 1;
      default: throw new Error(`unknown eBPF opcode ${op}`);
    }
  }
  throw new Error('program fell off the end');
}
