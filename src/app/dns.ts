/**
 * The user networks' resolver runs as a small tsbuild process of its own (`tsbuild __dns ROOT`), one
 * per store, started by the first container on a user network and ending by itself a few seconds
 * after the last one leaves: no daemon between runs. It holds `networks/.dns.lock` (a second one exits at
 * once) and says which gateways it serves in `networks/.dns.json`, which starters wait for.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { TsbuildError } from '../errors/index.js';
import { acquireLock, processStartTime, readJSONFile, sameProcessAlive, writeFileAtomic } from '../fsutil/index.js';
import { serveDns } from '../runtime/index.js';
import type { Store } from '../store/index.js';

let self: string[] | undefined;

/** How to start this program again (the front end knows; the app does not). */
export function setSelfCommand(argv: string[]): void {
  self = argv;
}

interface DnsStatus {
  pid: number;
  start: number;
  serving: string[];
}

const statusFile = (store: Store) => path.join(store.root, 'networks', '.dns.json');

/** Starts the resolver unless it runs, and waits until it serves the user networks that have containers. */
export async function ensureDns(store: Store): Promise<void> {
  const want = store.networks.list().filter((n) => !n.Builtin && n.Driver === 'bridge' && Object.keys(n.endpoints).length > 0).map((n) => n.Gateway);
  const read = () => readJSONFile<DnsStatus | undefined>(statusFile(store), undefined);
  let st = read();
  if (!st || !sameProcessAlive(st.pid, st.start)) {
    if (!self) throw new TsbuildError('NO_DNS', 'this front end cannot start the user networks\' resolver (no command to start it)');
    const child = spawn(self[0]!, [...self.slice(1), '__dns', store.root], { detached: true, stdio: 'ignore' });
    child.unref();
  }
  for (const until = Date.now() + 5000; Date.now() < until; await new Promise((r) => setTimeout(r, 50))) {
    st = read();
    if (st && sameProcessAlive(st.pid, st.start) && want.every((g) => st!.serving.includes(g))) return;
  }
  throw new TsbuildError('DNS_START', `the user networks' resolver did not start serving ${want.join(', ')} within 5 s: run tsbuild __dns ${store.root} by hand to see why`);
}

/** `tsbuild __dns ROOT`: the resolver process itself. */
export async function dnsMain(store: Store): Promise<number> {
  const release = await acquireLock(path.join(store.root, 'networks', '.dns.lock'), { wait: false });
  if (!release) return 0;
  const me = { pid: process.pid, start: processStartTime(process.pid) ?? 0 };
  let last = '';
  try {
    await serveDns(() => store.networks.list(), {
      onServing: (gws) => {
        const text = JSON.stringify({ ...me, serving: gws });
        if (text !== last) writeFileAtomic(statusFile(store), text);
        last = text;
      },
    });
  } finally {
    fs.rmSync(statusFile(store), { force: true });
    release();
  }
  return 0;
}
