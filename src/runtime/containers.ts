/** Container records for runs kept after they exit (no --rm): `containers/<id>/state.json`. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { NotFoundError, TsbuildError } from '../errors/index.js';
import { readJSONFile, writeFileAtomic, withLock } from '../fsutil/index.js';

export interface ContainerState {
  id: string;
  name: string;
  image: string;
  imageId: string;
  command: string[];
  created: string;
  status: 'created' | 'running' | 'exited';
  pid?: number;
  exitCode?: number;
  snapshot: string;
  keep: boolean;
  /** The container's cgroup (under tsbuild's own), for stats. */
  cgroup?: string;
  oomKilled?: boolean;
}

export class Containers {
  private dir: string;
  constructor(storeRoot: string) {
    this.dir = path.join(storeRoot, 'containers');
    fs.mkdirSync(this.dir, { recursive: true });
  }
  newId(): string {
    return crypto.randomBytes(32).toString('hex');
  }
  dirOf(id: string): string {
    return path.join(this.dir, id);
  }
  list(): ContainerState[] {
    const out: ContainerState[] = [];
    for (const id of fs.readdirSync(this.dir)) {
      const s = readJSONFile<ContainerState | null>(path.join(this.dir, id, 'state.json'), null);
      if (s) out.push(s);
    }
    return out.sort((a, b) => b.created.localeCompare(a.created));
  }
  /** Creates the record; a taken name is an error, as in Docker. */
  create(s: ContainerState): void {
    withLock(path.join(this.dir, '.lock'), () => {
      if (this.list().some((c) => c.name === s.name)) {
        throw new TsbuildError('NAME_IN_USE', `the container name "${s.name}" is already in use: remove it with "tsbuild rm ${s.name}" or pick another --name`);
      }
      fs.mkdirSync(this.dirOf(s.id), { recursive: true });
      writeFileAtomic(path.join(this.dirOf(s.id), 'state.json'), JSON.stringify(s, null, 1));
    });
  }
  update(id: string, patch: Partial<ContainerState>): void {
    const file = path.join(this.dirOf(id), 'state.json');
    const cur = readJSONFile<ContainerState | null>(file, null);
    if (cur) writeFileAtomic(file, JSON.stringify({ ...cur, ...patch }, null, 1));
  }
  find(ref: string): ContainerState {
    const all = this.list();
    const c = all.find((x) => x.name === ref) ?? all.filter((x) => x.id.startsWith(ref)).at(0);
    if (!c || (all.filter((x) => x.id.startsWith(ref)).length > 1 && c.name !== ref)) throw new NotFoundError(`no such container: ${ref}`, 'CONTAINER_NOT_FOUND');
    return c;
  }
  delete(id: string): void {
    fs.rmSync(this.dirOf(id), { recursive: true, force: true });
  }
}
