/**
 * Which command argv names, the way a Docker user types it: global options before the command
 * (`tsbuild --root DIR images`), Docker's management forms (`image ls`, `container rm`, `builder
 * prune`, `system info`), `build` as the default verb for flags or a path, and an unknown word as an
 * error that suggests the nearest command (never silently taken as a build context).
 */
import fs from 'node:fs';
import { suggest } from '../app/index.js';
import { UsageError } from '../errors/index.js';

/** Options accepted before any command; they apply to it through the environment it reads. */
const GLOBAL: Record<string, { env: string; value: boolean }> = {
  '--root': { env: 'TSBUILD_ROOT', value: true },
  '--snapshotter': { env: 'TSBUILD_SNAPSHOTTER', value: true },
  '--debug': { env: 'TSBUILD_DEBUG', value: false },
  '-D': { env: 'TSBUILD_DEBUG', value: false },
};

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
  builder: { prune: ['prune'], build: ['build'] },
  buildx: { build: ['build'], prune: ['prune'], history: ['builds'] },
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
  while (i < argv.length) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const g = GLOBAL[eq > 0 ? a.slice(0, eq) : a];
    if (!g) break;
    if (g.value) {
      const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      process.env[g.env] = v;
    } else process.env[g.env] = '1';
    i++;
  }
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
