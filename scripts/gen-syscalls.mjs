#!/usr/bin/env node
// Writes src/runtime/profiles/syscalls.json, the syscall name → number tables the seccomp compiler
// needs, from the kernel UAPI headers (Debian's linux-libc-dev): x86_64, its x32 ABI (numbers with
// __X32_SYSCALL_BIT) and i386. Run it again after a kernel-headers upgrade that adds syscalls.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const inc = process.env.ASM_INCLUDE ?? '/usr/include/x86_64-linux-gnu/asm';
const X32_BIT = 0x40000000;
function table(file) {
  const out = {};
  for (const line of fs.readFileSync(path.join(inc, file), 'utf8').split('\n')) {
    const m = /^#define __NR_(\w+)\s+\(?(__X32_SYSCALL_BIT \+ )?(\d+)\)?\s*$/.exec(line);
    if (m) out[m[1]] = (m[2] ? X32_BIT : 0) + Number(m[3]);
  }
  return out;
}
const tables = { x86_64: table('unistd_64.h'), x32: table('unistd_x32.h'), x86: table('unistd_32.h') };
const dest = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src/runtime/profiles/syscalls.json');
fs.writeFileSync(dest, JSON.stringify({ source: 'linux UAPI asm/unistd_{64,x32,32}.h', ...tables }) + '\n');
console.log(`wrote ${dest}: ${Object.entries(tables).map(([k, v]) => `${k} ${Object.keys(v).length}`).join(', ')}`);
