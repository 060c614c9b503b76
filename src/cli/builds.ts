/** `tsbuild builds [ls|show|diff|rm|prune]` (also `tsbuild buildx history …`): the build history. */
import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { ago, buildLogs, LOG_CAP, diffBuilds, getBuild, listBuilds, pruneBuilds, removeBuild, table, writeTimeline, type BuildRecord } from '../app/index.js';

import { UsageError } from '../errors/index.js';
import { flagBool, flagStr, eachObject, storeFrom, type FlagSpec, type Parsed, templateFormat } from './args.js';
import { commonFlags, formatFlag } from './images.js';
import { formatRows } from './template.js';

export const buildsFlags: FlagSpec[] = [
  ...commonFlags,
  { name: 'quiet', short: 'q', type: 'bool', help: 'ls: only ids' },
  formatFlag,
  { name: 'keep', type: 'string', arg: 'N', help: 'prune: keep the newest N builds (default 0)' },
  { name: 'timeline', type: 'string', arg: 'FILE.svg|FILE.html', help: "show: draw the build's timeline into a file" },
];

const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;
const ratio = (r: BuildRecord) => (r.cacheable ? `${Math.round((100 * r.cacheHits) / r.cacheable)}%` : '-');

function show(r: BuildRecord): string {
  const head = [
    `Build ${r.id} (${r.status}) started ${r.started}, ${secs(r.durationMs)}`,
    `Dockerfile: ${r.dockerfile}${r.target ? `  target: ${r.target}` : ''}`,
    ...(r.imageId ? [`Image: ${r.imageId}${r.names.length ? ` (${r.names.join(', ')})` : ''}`] : []),
    ...(r.error ? [`Error: ${r.error.split('\n')[0]}`] : []),
    `Cache: ${r.cacheHits} of ${r.cacheable} cacheable steps answered from the cache (${ratio(r)})`,
    '',
  ];
  const rows = [['STEP', 'LINE', 'VERDICT', 'START', 'TIME', 'WHY'], ...r.steps.map((s) => [s.name, s.line !== undefined ? String(s.line) : '-', s.verdict, `+${secs(s.start)}`, secs(s.durationMs), s.reason ?? ''])];
  return `${head.join('\n')}\n${table(rows)}`;
}

export async function buildsCommand(p: Parsed): Promise<number> {
  const [sub = 'ls', ...args] = p.positional;
  const store = await storeFrom(p);
  const format = templateFormat(p);
  switch (sub) {
    case 'ls':
    case 'list': {
      const all = listBuilds(store);
      if (format !== undefined) {
        process.stdout.write(formatRows(format, all.map((r) => ({ ID: r.id, Status: r.status, Started: r.started, CreatedSince: ago(r.started), Duration: secs(r.durationMs), Cache: ratio(r), Target: r.target ?? '', Names: r.names.join(','), Steps: String(r.steps.length) }))));
      } else if (flagBool(p, 'quiet')) process.stdout.write(all.map((r) => `${r.id}\n`).join(''));
      else process.stdout.write(table([['BUILD ID', 'STARTED', 'DURATION', 'STATUS', 'CACHED', 'TARGET', 'NAMES'], ...all.map((r) => [r.id, ago(r.started), secs(r.durationMs), r.status, ratio(r), r.target ?? '-', r.names.join(', ') || '-'])]));
      return 0;
    }
    case 'show':
    case 'inspect': {
      if (args.length !== 1) throw new UsageError('builds show takes one build: tsbuild builds show BUILD (an id, latest or ^N)');
      const r = getBuild(store, args[0]!);
      const timeline = flagStr(p, 'timeline');
      if (timeline !== undefined) {
        writeTimeline(store, r.id, timeline);
        return 0;
      }
      process.stdout.write(format === 'json' ? `${JSON.stringify(r, null, 2)}\n` : format !== undefined ? formatRows(format, [r]) : show(r));
      return 0;
    }
    case 'diff': {
      if (args.length !== 2) throw new UsageError('builds diff takes two builds: tsbuild builds diff A B (ids, latest or ^N; ^1 ^0 compares the last two)');
      const [a, b] = [getBuild(store, args[0]!), getBuild(store, args[1]!)];
      const changes = diffBuilds(a, b);
      if (format === 'json') {
        process.stdout.write(`${JSON.stringify(changes, null, 2)}\n`);
        return 0;
      }
      const total = `${b.id} took ${secs(b.durationMs)} (${a.id}: ${secs(a.durationMs)}); cache ${ratio(b)} (was ${ratio(a)})`;
      const what = { slower: 'got slower', faster: 'got faster', 'cache-lost': 'stopped hitting the cache', 'cache-gained': 'now hits the cache', added: 'is new', removed: 'is gone', failed: 'failed' } as const;
      process.stdout.write(`${total}\n${changes.length ? changes.map((c) => `${c.line !== undefined ? `line ${c.line}: ` : ''}${c.step} ${what[c.change]}: ${c.detail}\n`).join('') : 'no step changed\n'}`);
      return 0;
    }
    case 'logs': {
      if (args.length < 1 || args.length > 2 || (args[1] !== undefined && !/^\d+$/.test(args[1]))) throw new UsageError('builds logs takes a build and optionally a Dockerfile line: tsbuild builds logs BUILD [LINE]');
      for (const { step, file } of buildLogs(store, args[0]!, args[1] === undefined ? undefined : Number(args[1]))) {
        process.stdout.write(`#### ${step.name}${step.line !== undefined ? ` (line ${step.line})` : ''}: ${step.verdict}\n`);
        if (file && fs.existsSync(file)) await pipeline(fs.createReadStream(file), process.stdout, { end: false });
        if (step.logCut) process.stdout.write(`[tsbuild: the output was cut at ${LOG_CAP / 2 ** 20} MiB of ${((step.logBytes ?? 0) / 2 ** 20).toFixed(1)} MiB]\n`);
      }
      return 0;
    }
    case 'rm':
      if (args.length === 0) throw new UsageError('builds rm needs a build: tsbuild builds rm BUILD [BUILD...]');
      return eachObject(args, (ref) => void removeBuild(store, ref));
    case 'prune': {
      const keep = flagStr(p, 'keep') === undefined ? 0 : Number(flagStr(p, 'keep'));
      if (!Number.isInteger(keep) || keep < 0) throw new UsageError(`--keep ${flagStr(p, 'keep')}: give a whole number`);
      process.stdout.write(`Deleted ${pruneBuilds(store, keep).length} build records\n`);
      return 0;
    }
    default:
      throw new UsageError(`builds ${sub}: use ls, show, diff, logs, rm or prune`);
  }
}
