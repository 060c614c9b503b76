/**
 * Progress for machines and CI: `json` writes one event per line (schema in docs/progress.md);
 * `github` writes GitHub Actions workflow commands: a collapsible `::group::` per step, printed whole
 * when the step ends (parallel steps would otherwise interleave inside groups), and `::error
 * file=…,line=…::` for a failed step, so the error is annotated on the Dockerfile line.
 */
import type { SolverEvent, Vertex } from '../app/index.js';
import type { Renderer } from './progress.js';

interface Out {
  write(s: string): unknown;
}

/** Step numbers in order of first sight, as the other renderers number them. */
function numbering(): (v: Vertex) => number {
  const ids = new Map<string, number>();
  return (v) => {
    let n = ids.get(v.digest);
    if (n === undefined) ids.set(v.digest, (n = ids.size + 1));
    return n;
  };
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function jsonRenderer(out: Out): Renderer {
  const id = numbering();
  const t0 = Date.now();
  const emit = (o: Record<string, unknown>) => out.write(`${JSON.stringify(o)}\n`);
  const vertex = (v: Vertex) => ({
    id: id(v), digest: v.digest, name: v.name,
    ...(v.meta['stage'] !== undefined ? { stage: v.meta['stage'] } : {}),
    ...(v.meta['line'] !== undefined ? { line: v.meta['line'] } : {}),
  });
  const at = (time: number) => new Date(time).toISOString();
  return {
    event(e: SolverEvent) {
      const base = { time: at(e.time), vertex: vertex(e.vertex) };
      switch (e.type) {
        case 'start':
          return emit({ type: 'vertex.started', ...base });
        case 'log':
          return emit({ type: 'vertex.log', ...base, stream: e.stream, data: e.data.toString('utf8') });
        case 'status':
          return emit({ type: 'vertex.status', ...base, message: e.message });
        case 'cache':
          return emit({ type: e.hit ? 'vertex.cache_hit' : 'vertex.cache_miss', ...base, key: e.key, ...(e.reason ? { reason: e.reason } : {}) });
        case 'done':
          return emit({ type: 'vertex.completed', ...base, cached: e.cached, duration_ms: e.duration });
        case 'error':
          return emit({ type: 'vertex.error', ...base, error: errorText(e.error) });
        case 'cancelled':
          return emit({ type: 'vertex.cancelled', ...base });
      }
    },
    warn: (m, line) => emit({ type: 'warning', time: at(Date.now()), message: m, ...(line ? { line } : {}) }),
    info: (m) => emit({ type: 'info', time: at(Date.now()), message: m }),
    finish: () => emit({ type: 'build.solved', time: at(Date.now()), duration_ms: Date.now() - t0 }),
  };
}

/** Workflow-command escaping: data escapes %, CR and LF; properties also : and ,. */
export function ghData(s: string): string {
  return s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}
export function ghProperty(s: string): string {
  return ghData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

export function githubRenderer(out: Out, dockerfile: string): Renderer {
  const id = numbering();
  const logs = new Map<string, string[]>();
  const group = (v: Vertex, title: string) => {
    const lines = logs.get(v.digest) ?? [];
    out.write(`::group::#${id(v)} ${title}\n${lines.map((l) => `${l}\n`).join('')}::endgroup::\n`);
    logs.delete(v.digest);
  };
  const push = (v: Vertex, l: string) => logs.set(v.digest, [...(logs.get(v.digest) ?? []), l]);
  return {
    event(e: SolverEvent) {
      id(e.vertex);
      switch (e.type) {
        case 'log':
          for (const l of e.data.toString('utf8').replace(/\n$/, '').split('\n')) push(e.vertex, l);
          break;
        case 'status':
          push(e.vertex, e.message);
          break;
        case 'cache':
          // Known before the step runs: its explanation heads the step's output.
          if (!e.hit && e.reason && e.vertex.meta['stepId'] !== undefined) push(e.vertex, `cache miss: ${e.reason}`);
          break;
        case 'done': {
          group(e.vertex, `${e.vertex.name} ${e.cached ? '(CACHED)' : `(${(e.duration / 1000).toFixed(1)}s)`}`);
          break;
        }
        case 'error': {
          group(e.vertex, `${e.vertex.name} (ERROR)`);
          const line = e.vertex.meta['line'];
          const props = [`file=${ghProperty(dockerfile)}`, ...(line !== undefined ? [`line=${String(line)}`] : []), `title=${ghProperty(e.vertex.name)}`];
          out.write(`::error ${props.join(',')}::${ghData(errorText(e.error))}\n`);
          break;
        }
        case 'cancelled':
          group(e.vertex, `${e.vertex.name} (CANCELED)`);
          break;
      }
    },
    warn: (m, line) => out.write(`::warning file=${ghProperty(dockerfile)}${line ? `,line=${line}` : ''}::${ghData(m)}\n`),
    info: (m) => out.write(`${m}\n`),
    finish() {},
  };
}
