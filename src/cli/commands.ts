/**
 * Which command argv names, the way a Docker user types it: global options before the command
 * (`tsbuild --root DIR images`), Docker's management forms (`image ls`, `container rm`, `builder
 * prune`, `system info`), `build` as the default verb for flags or a path, and an unknown word as an
 * error that suggests the nearest command (never silently taken as a build context).
 */
import fs from 'node:fs';
import { suggest } from '../app/index.js';
import { UsageError } from '../errors/index.js';
import type { FlagSpec } from './args.js';

/**
 * Options accepted before any command, and after it where the command has no flag of that name (as
 * Docker's global flags); they apply through the environment the command reads.
 */
const GLOBAL: Record<string, { env: string; value: boolean; check?: (v: string) => void }> = {
  '--root': { env: 'TSBUILD_ROOT', value: true },
  '--snapshotter': { env: 'TSBUILD_SNAPSHOTTER', value: true },
  '--debug': { env: 'TSBUILD_DEBUG', value: false },
  '-D': { env: 'TSBUILD_DEBUG', value: false },
  '--log-level': {
    env: 'TSBUILD_LOG_LEVEL',
    value: true,
    // Docker's levels; tsbuild's output has two: errors with their cause chain (info), or with stack traces too (debug).
    check: (v) => {
      if (v === 'debug') process.env.TSBUILD_DEBUG = '1';
      else if (v !== 'info') throw new UsageError(`--log-level ${v}: tsbuild has the levels debug (= --debug: stack traces with errors) and info (the default); warnings and errors are always printed`);
    },
  },
};

/** Applies one global option at argv[i]; returns how many words it took (0: not a global option). */
function takeGlobal(argv: string[], i: number): number {
  const a = argv[i]!;
  const eq = a.indexOf('=');
  const g = GLOBAL[eq > 0 ? a.slice(0, eq) : a];
  if (!g) return 0;
  if (!g.value) {
    process.env[g.env] = '1';
    return 1;
  }
  const v = eq > 0 ? a.slice(eq + 1) : argv[i + 1];
  if (v === undefined) throw new UsageError(`${a} needs a value`);
  g.check?.(v);
  process.env[g.env] = v;
  return eq > 0 ? 1 : 2;
}

/**
 * The command's words without the global options among them (`tsbuild images --debug`), which are
 * applied. A flag the command has itself (`build --snapshotter`) stays its own; a command whose
 * positional words end its flags (`run IMAGE CMD…`) is scanned only up to them, so the container's
 * own `--debug` stays the container's.
 */
export function extractGlobals(rest: string[], flags: FlagSpec[], stopAtPositional = false): string[] {
  const own = new Set(flags.flatMap((f) => [`--${f.name}`, ...(f.short ? [`-${f.short}`] : [])]));
  const takesValue = new Set(flags.filter((f) => f.type !== 'bool').flatMap((f) => [`--${f.name}`, ...(f.short ? [`-${f.short}`] : [])]));
  const out: string[] = [];
  for (let i = 0; i < rest.length; ) {
    const a = rest[i]!;
    if (a === '--' || (stopAtPositional && !a.startsWith('-'))) {
      out.push(...rest.slice(i));
      break;
    }
    const name = a.includes('=') ? a.slice(0, a.indexOf('=')) : a;
    const n = own.has(name) ? 0 : takeGlobal(rest, i);
    if (n > 0) {
      i += n;
      continue;
    }
    const w = takesValue.has(name) && !a.includes('=') ? 2 : 1;
    out.push(...rest.slice(i, i + w));
    i += w;
  }
  return out;
}

/** buildx's builder instances: tsbuild has none, so each of these says what holds instead. */
const NO_BUILDERS = Object.fromEntries(
  ['ls', 'create', 'use', 'inspect', 'rm', 'stop', 'bake'].map((c) => [
    c,
    {
      missing:
        c === 'bake'
          ? 'bake is not supported: run tsbuild build for each target (a Dockerfile stage is --target STAGE)'
          : `tsbuild has no builder instances: every build runs on this machine, in the store at --root (${c === 'ls' || c === 'inspect' ? 'tsbuild info shows it' : 'leave this step out of the script'})`,
    },
  ]),
);

/** Docker's management commands → tsbuild's, or the reason a form is not there yet. */
const MANAGEMENT: Record<string, Record<string, string[] | { missing: string }>> = {
  image: {
    ls: ['images'], list: ['images'], inspect: ['inspect'], rm: ['rmi'], remove: ['rmi'], tag: ['tag'], push: ['push'], pull: ['pull'], build: ['build'],
    prune: ['image-prune'],
    history: ['history'],
    save: ['save'],
    load: ['load'],
  },
  container: {
    ls: ['ps'], list: ['ps'], ps: ['ps'], rm: ['rm'], remove: ['rm'], run: ['run'], stats: ['stats'],
    ...Object.fromEntries(['start', 'stop', 'restart', 'kill', 'exec', 'logs', 'attach', 'wait', 'top', 'cp', 'pause', 'unpause', 'rename', 'port'].map((c) => [c, [c]])),
    inspect: ['inspect', '--type', 'container'],
    prune: ['container-prune'],
  },
  volume: {
    create: ['volume-create'], ls: ['volume-ls'], list: ['volume-ls'], inspect: ['volume-inspect'], rm: ['volume-rm'], remove: ['volume-rm'], prune: ['volume-prune'],
  },
  network: {
    create: ['network-create'], ls: ['network-ls'], list: ['network-ls'], inspect: ['network-inspect'], rm: ['network-rm'], remove: ['network-rm'], prune: ['network-prune'],
    connect: ['network-connect'], disconnect: ['network-disconnect'],
  },
  builder: { prune: ['prune'], build: ['build'], du: ['cache', 'ls'], ...NO_BUILDERS },
  buildx: { build: ['build'], prune: ['prune'], history: ['builds'], du: ['cache', 'ls'], ...NO_BUILDERS },
  system: {
    info: ['info'],
    df: ['system-df'],
    prune: ['system-prune'],
    migrate: ['system-migrate'],
  },
};

export interface Resolved {
  cmd: string;
  rest: string[];
}

/** `-`, `.`, an existing path, or a URL: what Docker takes as a build context. */
function looksLikeContext(word: string): boolean {
  return word === '-' || word === '.' || /^[a-z]+:\/\//i.test(word) || word.startsWith('git@') || fs.existsSync(word);
}

export function resolveCommand(argv: string[], known: string[]): Resolved {
  let i = 0;
  for (let n = 0; i < argv.length && (n = takeGlobal(argv, i)) > 0; ) i += n;
  const [word, ...rest] = argv.slice(i);
  if (word === undefined) return { cmd: '', rest: [] };
  const group = MANAGEMENT[word];
  if (group) {
    const [sub, ...args] = rest;
    const target = sub === undefined ? undefined : group[sub];
    if (!target) {
      throw new UsageError(`${word} needs a subcommand: ${Object.keys(group).filter((k) => Array.isArray(group[k])).join(', ')}${sub ? ` (got "${sub}")` : ''}`);
    }
    if (!Array.isArray(target)) throw new UsageError(target.missing);
    return { cmd: target[0]!, rest: [...target.slice(1), ...args] };
  }
  if (known.includes(word)) return { cmd: word, rest };
  // build is the default verb: `tsbuild -t x .`, `tsbuild ./app`.
  if (word.startsWith('-') || looksLikeContext(word)) return { cmd: 'build', rest: argv.slice(i) };
  const hint = suggest(word, [...known, ...Object.keys(MANAGEMENT)]);
  throw new UsageError(`unknown command "${word}"${hint ? ` (did you mean "${hint}"?)` : ''}; see tsbuild --help. To build a directory named ${word}, write ./${word}`);
}
