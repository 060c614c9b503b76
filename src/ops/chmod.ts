/** `--chmod` values: octal (`0755`) or symbolic as chmod(1) (`+x`, `u=rwX,go=rX`, `a-w`). */
import { TsbuildError } from '../errors/index.js';

export class ChmodError extends TsbuildError {
  constructor(spec: string, why: string) {
    super('INVALID_CHMOD', `invalid --chmod=${spec}: ${why}; use octal like 0755 or symbolic like u=rwX,go=rX`);
  }
}

export type ModeFn = (mode: number, isDir: boolean) => number;

export function parseChmod(spec: string): ModeFn {
  if (/^[0-7]{1,4}$/.test(spec)) {
    const m = parseInt(spec, 8);
    return () => m;
  }
  const clauses = spec.split(',').map((c) => {
    const m = /^([ugoa]*)([-+=])([rwxXst]*)$/.exec(c);
    if (!m) throw new ChmodError(spec, `"${c}" is not a chmod clause`);
    return { who: m[1] || 'a', op: m[2]!, perms: m[3]! };
  });
  return (mode, isDir) => {
    let out = mode & 0o7777;
    for (const c of clauses) {
      const hasX = isDir || (mode & 0o111) !== 0;
      let bits = 0;
      let mask = 0;
      for (const w of c.who === 'a' ? 'ugo' : c.who) {
        const shift = w === 'u' ? 6 : w === 'g' ? 3 : 0;
        mask |= 0o7 << shift;
        if (w === 'u') mask |= 0o4000;
        if (w === 'g') mask |= 0o2000;
        if (w === 'o') mask |= 0o1000;
        for (const p of c.perms) {
          if (p === 'r') bits |= 0o4 << shift;
          if (p === 'w') bits |= 0o2 << shift;
          if (p === 'x' || (p === 'X' && hasX)) bits |= 0o1 << shift;
          if (p === 's' && w === 'u') bits |= 0o4000;
          if (p === 's' && w === 'g') bits |= 0o2000;
          if (p === 't') bits |= 0o1000;
        }
      }
      if (c.op === '+') out |= bits;
      else if (c.op === '-') out &= ~bits;
      else out = (out & ~mask) | bits;
    }
    return out;
  };
}
