/**
 * What the container lifecycle end-to-end files share: a store (e2eHarness), the CLI, waiting for a
 * state, removing containers even when a test fails, the test images, and an after-hook that ends any
 * monitor or container process still recorded, by the pid in its record (they are ours: the CLI the
 * test ran made them).
 */
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { cli, e2eHarness } from '../testutil/index.js';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Live and not a zombie (this machine's init may be slow to reap). */
export function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]$/.test(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]!);
  } catch {
    return false;
  }
}

export async function until(what: string, fn: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) assert.unreachable(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

interface Rec { id: string; pid?: number; containerPid?: number; status: string }

export function lifecycleFixture(prefix: string) {
  const h = e2eHarness(prefix);
  const { root, ctx, test } = h;
  const tsb = (args: string[], input?: string) => cli(args, { root, input });
  const records = (): Rec[] => {
    const dir = path.join(root, 'containers');
    if (!fs.existsSync(dir)) return [];
    return fs.readdirSync(dir).filter((d) => !d.startsWith('.')).flatMap((d) => {
      try {
        return [JSON.parse(fs.readFileSync(path.join(dir, d, 'state.json'), 'utf8')) as Rec];
      } catch {
        return [];
      }
    });
  };
  test.after(() => {
    for (const r of records()) {
      for (const pid of [r.containerPid, r.pid]) {
        if (!pid || !alive(pid)) continue;
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
  });
  const inspect = async (name: string, tmpl: string): Promise<string> => {
    const r = await tsb(['inspect', '--type', 'container', '-f', tmpl, name]);
    assert.is(r.code, 0, r.stderr);
    return r.stdout.trim();
  };
  /** Runs `fn` and removes the named containers afterwards, whatever happened. */
  const withContainers = async (names: string[], fn: () => Promise<void>): Promise<void> => {
    try {
      await fn();
    } finally {
      for (const n of names) await tsb(['rm', '-f', n]);
    }
  };
  const mountsOf = () => fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(root));
  /** `lc`: busybox with users and a trap script (STOPSIGNAL SIGUSR1); `lc-health`: a HEALTHCHECK. */
  const buildImages = async () => {
    const d = ctx(
      'RUN mkdir -p /tmp /srv && echo "app:x:1000:1000::/home/app:/bin/sh" >> /etc/passwd && echo "root:x:0:0:root:/root:/bin/sh" >> /etc/passwd && echo "app:x:1000:" >> /etc/group\n' +
        'COPY trap.sh /trap.sh\nRUN chmod +x /trap.sh\nSTOPSIGNAL SIGUSR1\n',
      { 'trap.sh': '#!/bin/sh\ntrap \'echo got-usr1; exit 0\' USR1\necho ready\nwhile true; do sleep 0.1; done\n' },
    );
    const r = await tsb(['-t', 'lc', d]);
    assert.is(r.code, 0, r.stderr);
    const hc = ctx('RUN mkdir -p /tmp\nHEALTHCHECK --interval=200ms --retries=2 CMD test -e /tmp/healthy\nCMD ["sleep", "600"]\n');
    assert.is((await tsb(['-t', 'lc-health', hc])).code, 0);
  };
  return { ...h, tsb, records, inspect, withContainers, mountsOf, buildImages };
}
