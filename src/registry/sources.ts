/**
 * Which repositories of which registries hold a blob, learned from pulls and pushes: what lets a push
 * ask the registry to mount a blob from another repository instead of uploading it again.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readJSONFile, withLock, writeFileAtomic } from '../fsutil/index.js';

const PER_BLOB = 8;

export class BlobSources {
  private file: string;
  constructor(private dir: string) {
    this.file = path.join(dir, 'blob-sources.json');
  }
  /** Repositories (`path`) on `domain` known to hold `digest`. */
  lookup(domain: string, digest: string): string[] {
    const all = readJSONFile<Record<string, string[]>>(this.file, {});
    return (all[digest] ?? []).filter((r) => r.startsWith(domain + '/')).map((r) => r.slice(domain.length + 1));
  }
  record(domain: string, repo: string, digests: string[]): void {
    if (digests.length === 0) return;
    fs.mkdirSync(this.dir, { recursive: true });
    withLock(this.file + '.lock', () => {
      const all = readJSONFile<Record<string, string[]>>(this.file, {});
      const where = `${domain}/${repo}`;
      for (const d of digests) all[d] = [where, ...(all[d] ?? []).filter((x) => x !== where)].slice(0, PER_BLOB);
      writeFileAtomic(this.file, JSON.stringify(all));
    });
  }
  /** Drops entries for blobs the store no longer has. */
  retain(has: (digest: string) => boolean): void {
    if (!fs.existsSync(this.file)) return;
    withLock(this.file + '.lock', () => {
      const all = readJSONFile<Record<string, string[]>>(this.file, {});
      for (const d of Object.keys(all)) if (!has(d)) delete all[d];
      writeFileAtomic(this.file, JSON.stringify(all));
    });
  }
}
