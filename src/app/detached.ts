/**
 * A detached tsbuild process (a container's monitor, an `exec -d`) that outlives the command which
 * starts it and reports its start as one JSON line on fd 3: `{"ok":true}`, or the error with Docker's
 * exit code. The same socket carries anything the starter sends it first (the monitor's container id).
 */
import { spawn } from 'node:child_process';
import type { Socket } from 'node:net';
import { TsbuildError } from '../errors/index.js';

export interface Reporter {
  /** fd 3, for a message to the process before its report. */
  chan: Socket;
  /** Waits for the report (or the process's end) and lets the process go; throws what it reported. */
  result(): Promise<void>;
  /** Lets the process go without waiting. */
  release(): void;
}

/** `onExit` words the failure when the process ends (or cannot start) before it reports. */
export function spawnReporting(argv: string[], fail: { code: string; exitCode: number; onExit: (code: number | null) => string }): Reporter {
  const [cmd, ...args] = argv;
  // No stdio is kept: the process outlives this one.
  const child = spawn(cmd!, args, { detached: true, stdio: ['ignore', 'ignore', 'ignore', 'pipe'] });
  const chan = child.stdio[3] as Socket;
  chan.on('error', () => undefined);
  const ended = new Promise<string>((resolve) => {
    child.on('exit', (code) => resolve(JSON.stringify({ error: fail.onExit(code), exitCode: fail.exitCode })));
    child.on('error', (e) => resolve(JSON.stringify({ error: `cannot start ${argv.join(' ')}: ${e.message}`, exitCode: fail.exitCode })));
  });
  const answer = new Promise<string>((resolve) => {
    let text = '';
    chan.on('data', (d: Buffer) => {
      text += d.toString();
      if (text.includes('\n')) resolve(text.split('\n')[0]!);
    });
  });
  const release = () => {
    chan.destroy();
    child.unref();
  };
  return {
    chan,
    release,
    async result() {
      const line = await Promise.race([answer, ended]);
      release();
      const r = JSON.parse(line) as { ok?: boolean; error?: string; code?: string; exitCode?: number };
      if (!r.ok) throw Object.assign(new TsbuildError(r.code ?? fail.code, r.error ?? 'it did not start'), { exitCode: r.exitCode ?? fail.exitCode });
    },
  };
}
