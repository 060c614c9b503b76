/** A small argv parser: `--flag value`, `--flag=value`, `-t value`, `-it`, repeatable flags, `--`. */
import { UsageError } from '../errors/index.js';
import { openStore, parseCompression, parseUntil, storeRoot, suggest, type AppEvent, type CompressionSpec, type RegistryOptions, type Store } from '../app/index.js';
import { formatRows } from './template.js';

export interface FlagSpec {
  /** Long name without dashes. */
  name: string;
  short?: string;
  type: 'bool' | 'string' | 'list';
  help: string;
  arg?: string;
  /**
   * Docker has this flag and tsbuild does not (yet): using it is an error with this text, which
   * says what to do instead, rather than "unknown flag"; `--help` does not list it.
   */
  unsupported?: string;
}

/** Flags every store-using command takes. */
export const rootFlag: FlagSpec = { name: 'root', type: 'string', arg: 'dir', help: 'store root (default /var/lib/tsbuild; env TSBUILD_ROOT)' };
export const helpFlag: FlagSpec = { name: 'help', short: 'h', type: 'bool', help: 'show this help' };

export interface Parsed {
  flags: Map<string, string | boolean | string[]>;
  positional: string[];
}

/**
 * Parses flags until the first positional when `stopAtPositional` (so `run IMAGE ls -la` keeps `-la`
 * for the container), otherwise anywhere.
 */
export function parseArgs(argv: string[], specs: FlagSpec[], stopAtPositional = false): Parsed {
  const flags = new Map<string, string | boolean | string[]>();
  const positional: string[] = [];
  const byLong = new Map(specs.map((s) => [s.name, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short!, s]));
  const set = (s: FlagSpec, v: string | boolean) => {
    if (s.type === 'list') flags.set(s.name, [...((flags.get(s.name) as string[] | undefined) ?? []), String(v)]);
    else flags.set(s.name, v);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      const s = byLong.get(name);
      if (!s) {
        const hint = suggest(name, specs.filter((x) => !x.unsupported).map((x) => x.name));
        throw new UsageError(`unknown flag: --${name}${hint ? ` (did you mean --${hint}?)` : ''}; see --help`);
      }
      if (s.unsupported) throw new UsageError(`--${name}: ${s.unsupported}`);
      if (s.type === 'bool') {
        const v = eq < 0 ? 'true' : a.slice(eq + 1).toLowerCase();
        if (v !== 'true' && v !== 'false') throw new UsageError(`--${name} takes true or false, not "${a.slice(eq + 1)}"`);
        set(s, v === 'true');
      } else {
        const v = eq >= 0 ? a.slice(eq + 1) : argv[++i];
        if (v === undefined) throw new UsageError(`flag --${name} needs a value${s.arg ? ` (${s.arg})` : ''}`);
        set(s, v);
      }
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      const letters = a.slice(1);
      for (let j = 0; j < letters.length; j++) {
        const s = byShort.get(letters[j]!);
        if (!s) throw new UsageError(`unknown shorthand flag: '${letters[j]}' in ${a}; see --help`);
        if (s.unsupported) throw new UsageError(`-${s.short}: ${s.unsupported}`);
        if (s.type === 'bool') {
          set(s, true);
          continue;
        }
        const rest = letters.slice(j + 1);
        const v = rest !== '' ? rest.replace(/^=/, '') : argv[++i];
        if (v === undefined) throw new UsageError(`flag -${s.short} needs a value${s.arg ? ` (${s.arg})` : ''}`);
        set(s, v);
        break;
      }
      continue;
    }
    positional.push(a);
    if (stopAtPositional) {
      positional.push(...argv.slice(i + 1));
      break;
    }
  }
  return { flags, positional };
}

export function flagStr(p: Parsed, name: string): string | undefined {
  const v = p.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}
export function flagBool(p: Parsed, name: string): boolean {
  return p.flags.get(name) === true;
}
export function flagList(p: Parsed, name: string): string[] {
  const v = p.flags.get(name);
  return Array.isArray(v) ? v : [];
}

export function usage(cmd: string, synopsis: string, specs: FlagSpec[]): string {
  const lines = specs.filter((s) => !s.unsupported).map((s) => {
    const left = `${s.short ? `-${s.short}, ` : '    '}--${s.name}${s.type === 'bool' ? '' : ` ${s.arg ?? 'value'}`}`;
    return `  ${left.padEnd(30)} ${s.help}`;
  });
  return `Usage: tsbuild ${cmd} ${synopsis}\n\nOptions:\n${lines.join('\n')}\n`;
}

/** Docker's `--disable-content-trust` (build, pull, push): its default, true, is what tsbuild does; false is refused. */
export const contentTrustFlag: FlagSpec = { name: 'disable-content-trust', type: 'bool', help: 'accepted (the default): tsbuild verifies digests and has no content trust' };
export function checkContentTrust(p: Parsed): void {
  if (p.flags.get('disable-content-trust') === false) throw new UsageError('--disable-content-trust=false: tsbuild has no content trust (Notary signatures); it checks every blob against its digest');
}

/** The store a command names with --root (and --snapshotter, where it takes one). */
export function storeFrom(p: Parsed): Promise<Store> {
  return openStore(storeRoot(flagStr(p, 'root')), flagStr(p, 'snapshotter') ?? process.env.TSBUILD_SNAPSHOTTER);
}

export const insecureFlag: FlagSpec = { name: 'insecure-registry', type: 'list', arg: 'host[:port]', help: 'allow plain HTTP to this registry (repeatable; loopback hosts always allowed)' };
export const compressionFlags: FlagSpec[] = [
  { name: 'compression', type: 'string', arg: 'gzip|zstd|uncompressed', help: 'layer compression for pushed or exported layers (default gzip)' },
  { name: 'compression-level', type: 'string', arg: 'N', help: 'compression level (gzip 0-9, zstd 1-19)' },
  { name: 'chunk-size', type: 'string', arg: 'bytes', help: 'upload blobs in PATCH chunks of this size (default: one PUT)' },
];

/** --insecure-registry, and TSBUILD_REGISTRY_RETRY_MS (tests shorten the back-off with it). */
export function registryOptions(p: Parsed): RegistryOptions {
  const retry = process.env.TSBUILD_REGISTRY_RETRY_MS;
  return { insecureRegistries: flagList(p, 'insecure-registry'), retryBaseMs: retry ? Number(retry) : undefined };
}

/** --compression and --compression-level; undefined when neither is given. */
export function compressionOf(p: Parsed): CompressionSpec | undefined {
  const c = flagStr(p, 'compression');
  const level = flagStr(p, 'compression-level');
  if (c === undefined && level === undefined) return undefined;
  return parseCompression(c ?? 'gzip', level);
}

export function chunkSizeOf(p: Parsed): number | undefined {
  const c = flagStr(p, 'chunk-size');
  if (c === undefined) return undefined;
  const n = Number(c);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--chunk-size ${c}: give a number of bytes`);
  return n;
}

/** cgroup limit flags, shared by run and (a subset) build. */
export const limitFlags: FlagSpec[] = [
  { name: 'memory', short: 'm', type: 'string', arg: 'bytes', help: 'memory limit (e.g. 64m, 1g)' },
  { name: 'memory-swap', type: 'string', arg: 'bytes', help: 'memory plus swap limit (-1: unlimited swap)' },
  { name: 'memory-reservation', type: 'string', arg: 'bytes', help: 'soft memory limit' },
  { name: 'oom-kill-disable', type: 'bool', help: 'do not OOM-kill the container (cgroup v1 only)' },
  { name: 'cpus', type: 'string', arg: 'number', help: 'CPUs the container may use (e.g. 0.5)' },
  { name: 'cpu-shares', short: 'c', type: 'string', arg: 'int', help: 'relative CPU weight (default 1024)' },
  { name: 'cpu-quota', type: 'string', arg: 'µs', help: 'CFS quota per period' },
  { name: 'cpu-period', type: 'string', arg: 'µs', help: 'CFS period (default 100000)' },
  { name: 'cpuset-cpus', type: 'string', arg: 'list', help: 'CPUs to run on (e.g. 0-1,3)' },
  { name: 'cpuset-mems', type: 'string', arg: 'list', help: 'memory nodes to use' },
  { name: 'pids-limit', type: 'string', arg: 'int', help: 'maximum number of processes (-1: unlimited)' },
  { name: 'blkio-weight', type: 'string', arg: '10-1000', help: 'relative block I/O weight' },
  { name: 'device-read-bps', type: 'list', arg: 'DEVICE:RATE', help: 'limit reads from a device (e.g. /dev/sda:1mb)' },
  { name: 'device-write-bps', type: 'list', arg: 'DEVICE:RATE', help: 'limit writes to a device' },
  { name: 'ulimit', type: 'list', arg: 'NAME=SOFT[:HARD]', help: 'a resource limit (e.g. nofile=1024:2048)' },
];

/** The limit flags as given (the app checks them). */
export function limitValues(p: Parsed) {
  return {
    memory: flagStr(p, 'memory'), memorySwap: flagStr(p, 'memory-swap'), memoryReservation: flagStr(p, 'memory-reservation'),
    oomKillDisable: flagBool(p, 'oom-kill-disable'), cpus: flagStr(p, 'cpus'), cpuShares: flagStr(p, 'cpu-shares'), cpuQuota: flagStr(p, 'cpu-quota'),
    cpuPeriod: flagStr(p, 'cpu-period'), cpusetCpus: flagStr(p, 'cpuset-cpus'), cpusetMems: flagStr(p, 'cpuset-mems'), pidsLimit: flagStr(p, 'pids-limit'),
    blkioWeight: flagStr(p, 'blkio-weight'), deviceReadBps: flagList(p, 'device-read-bps'), deviceWriteBps: flagList(p, 'device-write-bps'),
  };
}

/** Progress lines of app operations (pulls, pushes, transfers) on stderr. */
export function logToStderr(e: AppEvent): void {
  if (e.type === 'log') process.stderr.write(e.line + '\n');
}

/** `--filter until=DURATION` (prune commands), in ms; the only filter tsbuild knows. */
export function untilFilter(p: Parsed): number | undefined {
  return flagList(p, 'filter').map((f) => {
    if (!f.startsWith('until=')) throw new UsageError(`--filter ${f}: only until=DURATION is supported`);
    return parseUntil(f.slice(6));
  })[0];
}

/** --format as Docker reads it: `json` is `{{json .}}` (a line per object), `table` alone the usual table. */
/** tsbuild's version (package.json's), as `version`, `info` and SARIF reports give it. */
export const VERSION = '0.1.0';

export function templateFormat(p: Parsed): string | undefined {
  const f = flagStr(p, 'format');
  if (f === 'table') return undefined;
  return f === 'json' ? '{{json .}}' : f;
}

/** `inspect` output for a list of objects: JSON as Docker prints it, or `-f TEMPLATE` per object. */
export function printInspect(p: Parsed, all: unknown[]): void {
  const format = templateFormat(p);
  process.stdout.write(format !== undefined ? formatRows(format, all) : `${JSON.stringify(all, null, 4)}\n`);
}

/** Docker's habit for a command on several objects (rm, stop, kill, …): each is tried and named when done, failures are reported, exit 1 if any failed. */
export async function eachObject(names: string[], remove: (name: string) => Promise<void> | void): Promise<number> {
  let failed = 0;
  for (const n of names) {
    try {
      await remove(n);
      process.stdout.write(`${n}\n`);
    } catch (e) {
      process.stderr.write(`ERROR: ${(e as Error).message}\n`);
      failed++;
    }
  }
  return failed > 0 ? 1 : 0;
}
