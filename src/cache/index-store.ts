/**
 * The cache index: one JSON record per cache key under `<store>/cache/records/`, written atomically,
 * so concurrent builds share results without a global lock and a kill -9 leaves whole records only.
 * Each step also remembers the material of its last key (`cache/steps/`), which is how a miss says
 * what changed.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { readJSONFile, writeFileAtomic } from '../fsutil/index.js';
import type { Descriptor } from '../image/index.js';

export interface CacheRecord {
  key: string;
  /** Committed snapshot holding the step's result; absent for a step on scratch with no files. */
  snapshot?: string;
  /** The layer the step added, or null when it changed nothing. */
  layer: { diffID: string; descriptor: Descriptor } | null;
  description: string;
  created: string;
  lastUsed: string;
  size: number;
}

export interface StepHistory {
  key: string;
  material: Record<string, string>;
  time: string;
}

const hex = (key: string) => key.replace(/^sha256:/, '');

export class CacheIndex {
  private records: string;
  private steps: string;
  constructor(private root: string) {
    this.records = path.join(root, 'cache', 'records');
    this.steps = path.join(root, 'cache', 'steps');
    fs.mkdirSync(this.records, { recursive: true });
    fs.mkdirSync(this.steps, { recursive: true });
  }
  get memoFile(): string {
    return path.join(this.root, 'cache', 'checksums.json');
  }
  lookup(key: string): CacheRecord | undefined {
    return readJSONFile<CacheRecord | undefined>(path.join(this.records, hex(key) + '.json'), undefined);
  }
  save(rec: CacheRecord): void {
    writeFileAtomic(path.join(this.records, hex(rec.key) + '.json'), JSON.stringify(rec));
  }
  touch(rec: CacheRecord): void {
    this.save({ ...rec, lastUsed: new Date().toISOString() });
  }
  remove(key: string): void {
    fs.rmSync(path.join(this.records, hex(key) + '.json'), { force: true });
  }
  list(): CacheRecord[] {
    const out: CacheRecord[] = [];
    for (const f of fs.readdirSync(this.records)) {
      if (!f.endsWith('.json')) continue;
      try {
        out.push(JSON.parse(fs.readFileSync(path.join(this.records, f), 'utf8')) as CacheRecord);
      } catch {
        // a torn record cannot exist (atomic writes); a foreign file is ignored
      }
    }
    return out;
  }
  private stepFile(stepId: string): string {
    return path.join(this.steps, crypto.createHash('sha256').update(stepId).digest('hex') + '.json');
  }
  lastStep(stepId: string): StepHistory | undefined {
    return readJSONFile<StepHistory | undefined>(this.stepFile(stepId), undefined);
  }
  rememberStep(stepId: string, h: StepHistory): void {
    writeFileAtomic(this.stepFile(stepId), JSON.stringify(h));
  }
}
