/**
 * Renders solver events. `plain` prints one line per event, BuildKit-style (`#3 [build 2/4] RUN make`,
 * `#3 0.41 output`, `#3 DONE 1.2s`), for CI logs. `tty` keeps a live view: finished steps above, the
 * running ones below with the tail of their output, redrawn in place. The CLI is the only code that prints.
 */
import type { SolverEvent, Vertex } from '../app/index.js';
import { githubRenderer, jsonRenderer } from './progress-ci.js';

export type ProgressMode = 'auto' | 'tty' | 'plain' | 'quiet' | 'json' | 'github';
export const PROGRESS_MODES: ProgressMode[] = ['auto', 'tty', 'plain', 'quiet', 'json', 'github'];

export interface Renderer {
  event(e: SolverEvent): void;
  /** A warning, with the Dockerfile line it is about when there is one. */
  warn(message: string, line?: number): void;
  /** A plain progress line (pulls during planning, pushes after the build). */
  info(message: string): void;
  finish(): void;
}

interface Row {
  n: number;
  v: Vertex;
  start: number;
  end?: number;
  cached?: boolean;
  failed?: boolean;
  logs: string[];
  partial: string;
  miss?: string;
}

function secs(ms: number): string {
  return (ms / 1000).toFixed(1) + 's';
}

const warning = (m: string, line?: number) => `WARNING: ${line ? `line ${line}: ` : ''}${m}\n`;

export function createRenderer(mode: ProgressMode, out: NodeJS.WriteStream = process.stderr, dockerfile = 'Dockerfile'): Renderer {
  if (mode === 'quiet') return { event() {}, warn: (m, l) => out.write(warning(m, l)), info() {}, finish() {} };
  if (mode === 'json') return jsonRenderer(out);
  if (mode === 'github') return githubRenderer(out, dockerfile);
  const useTty = mode === 'tty' || (mode === 'auto' && out.isTTY === true && process.env.TERM !== 'dumb');
  const rows = new Map<string, Row>();
  let counter = 0;
  const t0 = Date.now();
  const row = (v: Vertex, time: number): Row => {
    let r = rows.get(v.digest);
    if (!r) {
      r = { n: ++counter, v, start: time, logs: [], partial: '' };
      rows.set(v.digest, r);
    }
    return r;
  };
  if (!useTty) {
    return {
      event(e) {
        const r = row(e.vertex, e.time);
        switch (e.type) {
          case 'start':
            out.write(`#${r.n} ${e.vertex.name}\n`);
            break;
          case 'log': {
            const text = r.partial + e.data.toString('utf8');
            const lines = text.split('\n');
            r.partial = lines.pop()!;
            for (const l of lines) out.write(`#${r.n} ${((e.time - r.start) / 1000).toFixed(3)} ${l}\n`);
            break;
          }
          case 'status':
            out.write(`#${r.n} ${e.message}\n`);
            break;
          case 'cache':
            if (!e.hit && e.reason && e.vertex.meta['stepId'] !== undefined) out.write(`#${r.n} cache miss: ${e.reason}\n`);
            break;
          case 'done':
            if (r.partial) out.write(`#${r.n} ${((e.time - r.start) / 1000).toFixed(3)} ${r.partial}\n`);
            out.write(`#${r.n} ${e.cached ? 'CACHED' : `DONE ${secs(e.duration)}`}\n`);
            break;
          case 'error':
            if (r.partial) out.write(`#${r.n} ${r.partial}\n`);
            out.write(`#${r.n} ERROR: ${e.error instanceof Error ? e.error.message.split('\n')[0] : String(e.error)}\n`);
            break;
          case 'cancelled':
            out.write(`#${r.n} CANCELED\n`);
            break;
        }
      },
      warn: (m, l) => out.write(warning(m, l)),
      info: (m) => out.write(`${m}\n`),
      finish() {},
    };
  }
  let drawn = 0;
  let timer: NodeJS.Timeout | undefined;
  const width = () => Math.max(40, (out.columns ?? 100) - 1);
  const clip = (s: string) => (s.length > width() ? s.slice(0, width() - 1) + '…' : s);
  const draw = () => {
    if (drawn > 0) out.write(`\x1b[${drawn}A\x1b[0J`);
    const lines: string[] = [`[+] Building ${secs(Date.now() - t0)} (${[...rows.values()].filter((r) => r.end).length}/${rows.size})`];
    for (const r of [...rows.values()].filter((x) => x.end === undefined)) {
      lines.push(clip(` => ${r.v.name}  ${secs(Date.now() - r.start)}`));
      for (const l of r.logs.slice(-6)) lines.push(clip(`    ${l}`));
    }
    out.write(lines.join('\n') + '\n');
    drawn = lines.length;
  };
  const settle = (r: Row, text: string) => {
    if (drawn > 0) out.write(`\x1b[${drawn}A\x1b[0J`);
    drawn = 0;
    out.write(text);
    draw();
  };
  return {
    event(e) {
      const r = row(e.vertex, e.time);
      timer ??= setInterval(draw, 150);
      switch (e.type) {
        case 'start':
          draw();
          break;
        case 'log': {
          const lines = (r.partial + e.data.toString('utf8')).split('\n');
          r.partial = lines.pop()!;
          r.logs.push(...lines);
          if (r.logs.length > 200) r.logs.splice(0, r.logs.length - 200);
          break;
        }
        case 'status':
          r.logs.push(e.message);
          break;
        case 'cache':
          if (!e.hit && e.reason && e.vertex.meta['stepId'] !== undefined) r.miss = e.reason;
          break;
        case 'done':
          r.end = e.time;
          r.cached = e.cached;
          settle(r, ` => ${e.cached ? 'CACHED ' : ''}${r.v.name}  ${secs(e.duration)}\n${r.miss ? `    cache miss: ${r.miss}\n` : ''}`);
          break;
        case 'error':
          r.end = e.time;
          r.failed = true;
          settle(r, ` => ERROR ${r.v.name}  ${secs(e.time - r.start)}\n${r.logs.slice(-20).map((l) => `    ${l}`).join('\n')}${r.logs.length ? '\n' : ''}`);
          break;
        case 'cancelled':
          r.end = e.time;
          settle(r, ` => CANCELED ${r.v.name}\n`);
          break;
      }
    },
    warn(m, l) {
      if (drawn > 0) out.write(`\x1b[${drawn}A\x1b[0J`);
      drawn = 0;
      out.write(warning(m, l));
    },
    info(m) {
      if (drawn > 0) out.write(`\x1b[${drawn}A\x1b[0J`);
      drawn = 0;
      out.write(`${m}\n`);
    },
    finish() {
      if (timer) clearInterval(timer);
      if (drawn > 0) out.write(`\x1b[${drawn}A\x1b[0J`);
      drawn = 0;
      out.write(`[+] Building ${secs(Date.now() - t0)} (${[...rows.values()].filter((r) => r.end).length}/${rows.size}) FINISHED\n`);
    },
  };
}
