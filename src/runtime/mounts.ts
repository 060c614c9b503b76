/** mount(8)-style options → mount(2) flags and data: the translation the C helper does not make. */
import type { Mount } from '../snapshotter/index.js';

export const MS = {
  RDONLY: 1, NOSUID: 2, NODEV: 4, NOEXEC: 8, SYNCHRONOUS: 16, REMOUNT: 32, MANDLOCK: 64, DIRSYNC: 128,
  NOATIME: 1024, NODIRATIME: 2048, BIND: 4096, MOVE: 8192, REC: 16384, PRIVATE: 1 << 18, SLAVE: 1 << 19,
  SHARED: 1 << 20, RELATIME: 1 << 21, STRICTATIME: 1 << 24,
} as const;

const FLAG_OPTS: Record<string, [set: boolean, flag: number]> = {
  ro: [true, MS.RDONLY], rw: [false, MS.RDONLY], nosuid: [true, MS.NOSUID], suid: [false, MS.NOSUID],
  nodev: [true, MS.NODEV], dev: [false, MS.NODEV], noexec: [true, MS.NOEXEC], exec: [false, MS.NOEXEC],
  sync: [true, MS.SYNCHRONOUS], async: [false, MS.SYNCHRONOUS], dirsync: [true, MS.DIRSYNC],
  noatime: [true, MS.NOATIME], atime: [false, MS.NOATIME], nodiratime: [true, MS.NODIRATIME],
  relatime: [true, MS.RELATIME], strictatime: [true, MS.STRICTATIME], bind: [true, MS.BIND],
  rbind: [true, MS.BIND | MS.REC], remount: [true, MS.REMOUNT], defaults: [false, 0],
};

export interface SysMount {
  type: string;
  source: string;
  flags: number;
  data: string;
  cwd?: string;
}

export function toSysMount(m: Mount): SysMount {
  let flags = 0;
  const data: string[] = [];
  for (const o of m.options) {
    const f = FLAG_OPTS[o];
    if (f) flags = f[0] ? flags | f[1] : flags & ~f[1];
    else data.push(o);
  }
  const type = m.type === 'bind' || m.type === 'rbind' ? 'none' : m.type;
  if (m.type === 'bind' || m.type === 'rbind') flags |= MS.BIND;
  return { type, source: m.source, flags, data: data.join(','), cwd: m.cwd };
}
