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

function distance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!;
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length]!;
}
