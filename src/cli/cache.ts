/** `tsbuild cache ls|prune|export-mounts|import-mounts` and `tsbuild prune`. */
import { confirmed, DECLINED } from './ask.js';
import { exportMounts, humanSize, importMounts, listCacheRecords, listMounts, parseMountsLocation, parseSize, prune, table } from '../app/index.js';
import { UsageError } from '../errors/index.js';
import { flagBool, flagStr, helpFlag, insecureFlag, logToStderr, registryOptions, rootFlag, storeFrom, untilFilter, type FlagSpec, type Parsed } from './args.js';

export const cacheFlags: FlagSpec[] = [
  rootFlag,
  { name: 'keep-storage', type: 'string', arg: 'SIZE', help: 'prune: keep at most this much cache (e.g. 10GB), least recently used first out' },
  { name: 'filter', type: 'list', arg: 'until=DURATION', help: 'prune: only records not used for this long (e.g. until=24h)' },
  { name: 'all', short: 'a', type: 'bool', help: 'prune: every record' },
  { name: 'force', short: 'f', type: 'bool', help: 'prune: do not ask on a terminal' },
  { name: 'mounts', type: 'bool', help: 'ls: list RUN --mount=type=cache directories' },
  { name: 'output', short: 'o', type: 'string', arg: 'DIR|type=registry,ref=R', help: 'export-mounts: directory or registry ref to write the cache mounts to' },
  { name: 'input', short: 'i', type: 'string', arg: 'DIR|type=registry,ref=R', help: 'import-mounts: directory or registry ref written by export-mounts' },
  insecureFlag,
  helpFlag,
];

const log = { onEvent: logToStderr };

export async function cacheCommand(sub: string | undefined, p: Parsed): Promise<number> {
  const s = await storeFrom(p);
  if (sub === 'ls' && !flagBool(p, 'mounts')) {
    const recs = listCacheRecords(s);
    const rows = [['KEY', 'SIZE', 'LAST USED', 'STEP']];
    for (const r of recs) rows.push([r.key.slice(7, 19), humanSize(r.size), r.lastUsed.replace('T', ' ').slice(0, 19), r.description]);
    process.stdout.write(table(rows));
    process.stdout.write(`${recs.length} records, ${humanSize(recs.reduce((a, r) => a + r.size, 0))}\n`);
    return 0;
  }
  if (sub === 'ls') {
    const rows = [['ID', 'SIZE', 'LAST USED'], ...listMounts(s).map((m) => [m.id, humanSize(m.size), m.lastUsed.toISOString().replace('T', ' ').slice(0, 19)])];
    process.stdout.write(table(rows));
    return 0;
  }
  if (sub === 'export-mounts') {
    const out = flagStr(p, 'output') ?? p.positional[0];
    if (!out) throw new UsageError('cache export-mounts needs --output DIR or --output type=registry,ref=R');
    const to = parseMountsLocation(out, '--output');
    const n = await exportMounts(s, to, registryOptions(p), log);
    process.stdout.write(`exported ${n} cache mounts to ${'registry' in to ? to.registry : to.dir}\n`);
    return 0;
  }
  if (sub === 'import-mounts') {
    const from = flagStr(p, 'input') ?? p.positional[0];
    if (!from) throw new UsageError('cache import-mounts needs --input DIR or --input type=registry,ref=R');
    const n = await importMounts(s, parseMountsLocation(from, '--input'), registryOptions(p), log);
    process.stdout.write(`imported ${n} cache mounts\n`);
    return 0;
  }
  if (sub === 'prune') {
    const until = untilFilter(p);
    const ks = flagStr(p, 'keep-storage');
    const what = ks !== undefined ? `build cache beyond ${ks}, least recently used first` : until !== undefined && !flagBool(p, 'all') ? 'build cache not used for the time --filter gives' : 'all build cache';
    if (!(await confirmed(p, `This will remove ${what}.`))) return DECLINED;
    const r = await prune(s, { all: flagBool(p, 'all'), untilMs: until, keepStorage: ks !== undefined ? parseSize(ks) : undefined });
    process.stdout.write(`Deleted ${r.records} cache records; reclaimed ${humanSize(r.bytes)}\n`);
    return 0;
  }
  throw new UsageError(`cache needs a subcommand: ls [--mounts], prune, export-mounts --output DIR or import-mounts --input DIR (got ${sub ?? 'nothing'})`);
}
