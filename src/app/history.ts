/**
 * Build history: every build (finished, failed or cancelled) is recorded in `<store>/history/<id>.json`
 * with its time, duration, target, result, cache hit ratio and, per Dockerfile step, its duration
 * and cache verdict with the miss explanation. `builds ls|show|diff|rm|prune` read them; the newest
 * 200 are kept.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { NotFoundError, TsbuildError } from '../errors/index.js';
import { byText, writeFileAtomic } from '../fsutil/index.js';
import type { SolverEvent, Vertex } from '../builder/index.js';
import type { Store } from '../store/index.js';

export interface StepRecord {
  /** The step's vertex digest (short), and those of the steps it waited for. */
  id?: string;
  deps?: string[];
  name: string;
  stage?: string;
  line?: number;
  /** Milliseconds from the build's start. */
  start: number;
  durationMs: number;
  verdict: 'cached' | 'ran' | 'failed' | 'cancelled';
  /** Why the cache missed (when it did). */
  reason?: string;
  /** The step's whole output: `history/<build>/<log>`, its size, and whether the cap cut it. */
  log?: string;
  logBytes?: number;
  logCut?: boolean;
}

export interface BuildRecord {
  id: string;
  started: string;
  durationMs: number;
  status: 'completed' | 'failed' | 'cancelled';
  error?: string;
  context: string;
  dockerfile: string;
  target?: string;
  names: string[];
  imageId?: string;
  /** Dockerfile steps answered from the cache, of those that could be. */
  cacheHits: number;
  cacheable: number;
  steps: StepRecord[];
}

const KEEP = 200;
const SLACK = 20;
const dir = (store: Store) => path.join(store.root, 'history');

/** Collects what a build's solver events say about its steps. */
/** A step's output is kept whole up to this; past it the log says how much was cut. */
export const LOG_CAP = 64 << 20;

export class BuildRecorder {
  readonly id = crypto.randomBytes(6).toString('hex');
  private readonly t0 = Date.now();
  private readonly steps = new Map<string, StepRecord>();
  private readonly logs = new Map<string, number>();
  private hits = 0;
  private cacheable = 0;
  constructor(private readonly historyDir?: string) {}

  /** Appends to the step's log file (synchronously: output order is the solver's). */
  private log(s: StepRecord, data: Buffer): void {
    if (!this.historyDir) return;
    const bytes = s.logBytes ?? 0;
    s.logBytes = bytes + data.length;
    if (bytes >= LOG_CAP) {
      s.logCut = true;
      return;
    }
    try {
      const d = path.join(this.historyDir, this.id);
      if (!s.log) {
        fs.mkdirSync(d, { recursive: true });
        s.log = `${this.steps.size}-${(s.line ?? 0).toString()}.log`;
      }
      let fd = this.logs.get(s.log);
      if (fd === undefined) this.logs.set(s.log, (fd = fs.openSync(path.join(d, s.log), 'a')));
      fs.writeSync(fd, bytes + data.length > LOG_CAP ? data.subarray(0, LOG_CAP - bytes) : data);
      if (bytes + data.length > LOG_CAP) s.logCut = true;
    } catch {
      // a log that cannot be kept costs the log, never the build
    }
  }

  event(e: SolverEvent): void {
    if (e.vertex.meta['stepId'] === undefined) return;
    let s = this.steps.get(e.vertex.digest);
    if (!s) {
      s = {
        id: e.vertex.digest.slice(7, 19), deps: stepDeps(e.vertex).map((d) => d.slice(7, 19)),
        name: e.vertex.name, start: e.time - this.t0, durationMs: 0, verdict: 'ran',
        ...(e.vertex.meta['stage'] !== undefined ? { stage: String(e.vertex.meta['stage']) } : {}),
        ...(typeof e.vertex.meta['line'] === 'number' ? { line: e.vertex.meta['line'] } : {}),
      };
      this.steps.set(e.vertex.digest, s);
    }
    if (e.type === 'log') this.log(s, e.data);
    else if (e.type === 'cache') {
      this.cacheable++;
      if (e.hit) this.hits++;
      else if (e.reason) s.reason = e.reason;
    } else if (e.type === 'done') {
      s.durationMs = e.duration;
      s.verdict = e.cached ? 'cached' : 'ran';
    } else if (e.type === 'error' || e.type === 'cancelled') {
      s.durationMs = e.time - this.t0 - s.start;
      s.verdict = e.type === 'error' ? 'failed' : 'cancelled';
    }
  }

  /** Writes the record; a failure to write never fails the build (it is reported as a warning). */
  save(store: Store, o: Omit<BuildRecord, 'id' | 'started' | 'durationMs' | 'cacheHits' | 'cacheable' | 'steps'>): string | undefined {
    for (const fd of this.logs.values()) fs.closeSync(fd);
    this.logs.clear();
    const rec: BuildRecord = {
      id: this.id, started: new Date(this.t0).toISOString(), durationMs: Date.now() - this.t0, ...o,
      cacheHits: this.hits, cacheable: this.cacheable, steps: [...this.steps.values()].sort((a, b) => a.start - b.start),
    };
    try {
      fs.mkdirSync(dir(store), { recursive: true });
      // History, not state: atomic, but not worth an fsync on every build.
      writeFileAtomic(path.join(dir(store), `${this.id}.json`), JSON.stringify(rec, null, 1), { sync: false });
      trim(store);
      return undefined;
    } catch (e) {
      return `the build was not recorded in the history: ${(e as Error).message}`;
    }
  }
}

/** The Dockerfile steps a vertex waits for: its inputs, looking through vertices that are not steps. */
function stepDeps(v: Vertex): string[] {
  const out = new Set<string>();
  const seen = new Set<string>();
  const visit = (x: Vertex) => {
    for (const i of x.inputs) {
      if (seen.has(i.digest)) continue;
      seen.add(i.digest);
      if (i.meta['stepId'] !== undefined) out.add(i.digest);
      else visit(i);
    }
  };
  visit(v);
  return [...out];
}

function trim(store: Store): void {
  // Counting is a readdir; reading every record (to sort them by age) only when there are too many.
  let n = 0;
  try {
    n = fs.readdirSync(dir(store)).filter((f) => f.endsWith('.json')).length;
  } catch {
    return;
  }
  // Trimmed back to KEEP once SLACK more have gathered: reading them all is then once per SLACK builds.
  if (n <= KEEP + SLACK) return;
  for (const r of listBuilds(store).slice(KEEP)) removeRecord(store, r.id);
}

/**
 * One record's files, by its exact id. Trimming and pruning remove what one listing found: resolving
 * each id again through getBuild read every record once per removal (21 x 221 files, 19 MB of JSON,
 * in the build that crossed 220).
 */
function removeRecord(store: Store, id: string): string {
  fs.rmSync(path.join(dir(store), `${id}.json`), { force: true });
  fs.rmSync(path.join(dir(store), id), { recursive: true, force: true });
  return id;
}

/** Newest first; a damaged record is left out (builds rm removes it by id). */
export function listBuilds(store: Store): BuildRecord[] {
  let files: string[] = [];
  try {
    files = fs.readdirSync(dir(store)).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  return files
    .flatMap((f) => {
      try {
        return [JSON.parse(fs.readFileSync(path.join(dir(store), f), 'utf8')) as BuildRecord];
      } catch {
        return [];
      }
    })
    .sort((a, b) => byText(b.started, a.started));
}

/** By id prefix, or `latest` / `^N` (the Nth newest, `^0` being the latest), as buildx history refs. */
export function getBuild(store: Store, ref: string): BuildRecord {
  const all = listBuilds(store);
  const nth = ref === 'latest' ? 0 : /^\^\d+$/.test(ref) ? Number(ref.slice(1)) : undefined;
  const found = nth !== undefined ? all.slice(nth, nth + 1) : all.filter((r) => r.id.startsWith(ref));
  if (found.length > 1) throw new TsbuildError('BUILD_AMBIGUOUS', `"${ref}" matches ${found.length} builds: give more of the id`);
  if (found.length === 0 || ref === '') throw new NotFoundError(`no build ${ref} in the history (tsbuild builds ls lists them)`, 'BUILD_NOT_FOUND');
  return found[0]!;
}

export function removeBuild(store: Store, ref: string): string {
  return removeRecord(store, getBuild(store, ref).id);
}

/** The whole output of a build's steps (those at `line`, if given), with a header per step. */
export function* buildLogs(store: Store, ref: string, line?: number): Generator<{ step: StepRecord; file?: string }> {
  const r = getBuild(store, ref);
  const steps = r.steps.filter((s) => line === undefined || s.line === line);
  if (steps.length === 0) throw new NotFoundError(`build ${r.id} has no step at line ${line}`, 'BUILD_STEP_NOT_FOUND');
  for (const s of steps) yield { step: s, ...(s.log ? { file: path.join(dir(store), r.id, s.log) } : {}) };
}

/** Keeps the newest `keep` records. */
export function pruneBuilds(store: Store, keep = 0): string[] {
  return listBuilds(store).slice(keep).map((r) => removeRecord(store, r.id));
}

/** A step's identity across builds: its stage and instruction, not its `[stage n/m]` counter. */
function stepKey(s: StepRecord): string {
  return `${s.stage ?? ''}|${s.name.replace(/^\[[^\]]*\]\s*/, '')}`;
}

export interface StepChange {
  step: string;
  line?: number;
  change: 'slower' | 'faster' | 'cache-lost' | 'cache-gained' | 'added' | 'removed' | 'failed';
  detail: string;
}

/**
 * What changed from build A to build B, step by step: steps that stopped hitting the cache (with B's
 * explanation), got slower or faster (by a fifth and 100 ms at least), were added, removed or failed.
 */
export function diffBuilds(a: BuildRecord, b: BuildRecord): StepChange[] {
  const before = new Map(a.steps.map((s) => [stepKey(s), s]));
  const out: StepChange[] = [];
  const secs = (ms: number) => `${(ms / 1000).toFixed(2)}s`;
  for (const s of b.steps) {
    const p = before.get(stepKey(s));
    before.delete(stepKey(s));
    const base = { step: s.name, ...(s.line !== undefined ? { line: s.line } : {}) };
    if (s.verdict === 'failed') out.push({ ...base, change: 'failed', detail: p ? `was ${p.verdict} in ${a.id}` : 'new step' });
    else if (!p) out.push({ ...base, change: 'added', detail: `${s.verdict}, ${secs(s.durationMs)}` });
    else if (p.verdict === 'cached' && s.verdict === 'ran') out.push({ ...base, change: 'cache-lost', detail: s.reason ?? 'the cache had no record for it' });
    else if (p.verdict !== 'cached' && s.verdict === 'cached') out.push({ ...base, change: 'cache-gained', detail: 'answered from the cache' });
    else if (s.durationMs - p.durationMs >= 100 && s.durationMs > p.durationMs * 1.2) out.push({ ...base, change: 'slower', detail: `${secs(p.durationMs)} → ${secs(s.durationMs)}` });
    else if (p.durationMs - s.durationMs >= 100 && p.durationMs > s.durationMs * 1.2) out.push({ ...base, change: 'faster', detail: `${secs(p.durationMs)} → ${secs(s.durationMs)}` });
  }
  for (const p of before.values()) out.push({ step: p.name, ...(p.line !== undefined ? { line: p.line } : {}), change: 'removed', detail: `not in ${b.id}` });
  return out;
}
