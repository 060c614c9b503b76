import fs from 'node:fs';
import os from 'node:os';

/**
 * Whether a kernel release ("6.18.44-fc-v1272") is at least `want` ("5.10"), by major and minor: what a
 * kernel feature a filesystem or the sandbox relies on first appeared in. Default: the running kernel.
 */
export function kernelAtLeast(want: string, have: string = os.release()): boolean {
  const [a = 0, b = 0] = want.split('.').map((x) => parseInt(x, 10));
  const [x = 0, y = 0] = have.split('.').map((x) => parseInt(x, 10));
  return x > a || (x === a && y >= b);
}

let boot: string | undefined;

/**
 * This boot of the machine, as the kernel names it (a random UUID chosen at each boot): what was in
 * the page cache before a different one may never have reached the disk. `unknown` without /proc.
 */
export function bootId(): string {
  if (boot === undefined) {
    try {
      boot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || 'unknown';
    } catch {
      boot = 'unknown';
    }
  }
  return boot;
}
