/** Instruction flags with BuildKit's rules (instructions/bflag.go): bool, string and repeatable list flags. */
export type FlagKind = 'bool' | 'string' | 'strings';

export interface FlagValues {
  bools: Map<string, boolean>;
  strings: Map<string, string>;
  lists: Map<string, string[]>;
}

export function parseFlags(args: string[], spec: Record<string, FlagKind>): FlagValues {
  const out: FlagValues = { bools: new Map(), strings: new Map(), lists: new Map() };
  const used = new Set<string>();
  for (const arg of args) {
    if (!arg.startsWith('--')) throw new Error(`arg should start with -- : ${arg}`);
    if (arg === '--') break;
    const body = arg.slice(2);
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    const hasValue = eq >= 0;
    const value = hasValue ? body.slice(eq + 1) : '';
    const kind = spec[name];
    if (!kind) {
      const known = Object.keys(spec);
      const hint = suggest(name, known);
      throw new Error(`unknown flag: ${name}${hint ? ` (did you mean ${hint}?)` : ''}`);
    }
    if (used.has(name) && kind !== 'strings') throw new Error(`duplicate flag specified: ${name}`);
    used.add(name);
    switch (kind) {
      case 'bool': {
        if (hasValue && value === '') throw new Error(`missing a value on flag: ${name}`);
        const v = value.toLowerCase();
        if (v === 'true' || v === '') out.bools.set(name, true);
        else if (v === 'false') out.bools.set(name, false);
        else throw new Error(`expecting boolean value for flag ${name}, not: ${value}`);
        break;
      }
      case 'string':
        if (!hasValue) throw new Error(`missing a value on flag: ${name}`);
        out.strings.set(name, value);
        break;
      case 'strings':
        if (!hasValue) throw new Error(`missing a value on flag: ${name}`);
        out.lists.set(name, [...(out.lists.get(name) ?? []), value]);
        break;
    }
  }
  return out;
}

/** Levenshtein-based "did you mean" for flag and instruction names. */
export function suggest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  const w = word.toLowerCase();
  for (const c of candidates) {
    const d = distance(w, c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(w.length / 3)) ? best : undefined;
}

/** Optimal string alignment distance: Levenshtein plus adjacent transpositions (chmdo → chmod is 1). */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}
