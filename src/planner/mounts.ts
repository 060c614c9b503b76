/**
 * `RUN --mount=` values with BuildKit's rules (instructions/commands_runmount.go): CSV fields (quotes
 * allowed), case-insensitive keys with aliases, `type` defaulting to bind, option scope checks, and
 * variable expansion of values except `from`.
 */
import path from 'node:path';
import { suggest } from '../parser/index.js';
import type { RunMountSpec } from '../opspec/index.js';

export type RunMount = RunMountSpec;

const ALIASES: Record<string, string> = { dst: 'target', destination: 'target', src: 'source', readonly: 'ro', readwrite: 'rw' };
const KEYS = ['type', 'target', 'source', 'from', 'ro', 'rw', 'id', 'sharing', 'mode', 'uid', 'gid', 'size', 'required', 'env'];
const BOOLS = new Set(['ro', 'rw', 'required']);

function csvFields(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let q = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '"') {
      if (q && s[i + 1] === '"') {
        cur += '"';
        i++;
      } else q = !q;
    } else if (c === ',' && !q) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  if (q) throw new Error(`invalid mount ${JSON.stringify(s)}: unterminated quote`);
  out.push(cur);
  return out.map((f) => f.trim()).filter((f) => f !== '');
}

function parseBool(k: string, v: string | undefined): boolean {
  if (v === undefined) return true;
  const l = v.toLowerCase();
  if (l === 'true' || l === '1') return true;
  if (l === 'false' || l === '0') return false;
  throw new Error(`invalid value for ${k}: ${v}`);
}

function parseInt10(k: string, v: string): number {
  if (!/^\d+$/.test(v)) throw new Error(`invalid value for ${k}: ${v}`);
  return parseInt(v, 10);
}

function parseSize(v: string): number {
  const m = /^(\d+(?:\.\d+)?)([kmgt]?)(i?b?)$/i.exec(v);
  if (!m) throw new Error(`invalid value for size: ${v}`);
  const pow = { '': 0, k: 1, m: 2, g: 3, t: 4 }[m[2]!.toLowerCase()] ?? 0;
  return Math.round(parseFloat(m[1]!) * 1024 ** pow);
}

export function parseRunMount(value: string, expand: (s: string) => string, workdir: string, sshIndex = 0): RunMount {
  const kv = new Map<string, string | undefined>();
  for (const f of csvFields(value)) {
    const i = f.indexOf('=');
    let k = (i < 0 ? f : f.slice(0, i)).toLowerCase();
    k = ALIASES[k] ?? k;
    const v = i < 0 ? undefined : f.slice(i + 1);
    if (!KEYS.includes(k)) {
      const hint = suggest(k, [...KEYS, ...Object.keys(ALIASES)]);
      throw new Error(`unexpected key '${k}' in '${f}'${hint ? ` (did you mean ${hint}?)` : ''}`);
    }
    if (v === undefined && !BOOLS.has(k)) throw new Error(`invalid field '${f}' must be a key=value pair`);
    kv.set(k, v === undefined || k === 'from' ? v : expand(v));
  }
  const type = (kv.get('type') ?? 'bind').toLowerCase();
  if (!['bind', 'cache', 'tmpfs', 'secret', 'ssh'].includes(type)) throw new Error(`unsupported mount type "${type}"`);
  const scope: Record<string, string[]> = { mode: ['cache', 'secret', 'ssh'], uid: ['cache', 'secret', 'ssh'], gid: ['cache', 'secret', 'ssh'], required: ['secret', 'ssh'], size: ['tmpfs'], sharing: ['cache'], env: ['secret'] };
  for (const [k, types] of Object.entries(scope)) if (kv.has(k) && !types.includes(type)) throw new Error(`${k} is not allowed for ${type} mounts`);
  if (kv.has('from') && type !== 'bind' && type !== 'cache') throw new Error(`from is not allowed for ${type} mounts`);
  if (kv.has('from') && /\$/.test(kv.get('from') ?? '')) throw new Error("'from' doesn't support variable expansion, define alias stage instead");
  let target = kv.get('target');
  const resolveTarget = (t: string) => path.posix.resolve(workdir || '/', t);
  const ro = kv.has('ro') ? parseBool('ro', kv.get('ro')) : undefined;
  const rw = kv.has('rw') ? parseBool('rw', kv.get('rw')) : undefined;
  const writable = rw ?? (ro !== undefined ? !ro : undefined);
  const mode = kv.has('mode') ? parseInt(kv.get('mode')!, 8) : undefined;
  if (mode !== undefined && Number.isNaN(mode)) throw new Error(`invalid value for mode: ${kv.get('mode')}`);
  const uid = kv.has('uid') ? parseInt10('uid', kv.get('uid')!) : 0;
  const gid = kv.has('gid') ? parseInt10('gid', kv.get('gid')!) : 0;
  switch (type) {
    case 'bind': {
      if (!target) throw new Error('mount target is required for bind mounts');
      const t = resolveTarget(target);
      if (t === '/') throw new Error('invalid mount target "/"');
      return { type: 'bind', target: t, source: kv.get('source') ?? '', from: kv.get('from'), rw: writable ?? false };
    }
    case 'cache': {
      if (!target) throw new Error('mount target is required for cache mounts');
      const t = resolveTarget(target);
      const sharing = (kv.get('sharing') ?? 'shared').toLowerCase();
      if (sharing !== 'shared' && sharing !== 'private' && sharing !== 'locked') throw new Error(`unsupported sharing value "${sharing}"`);
      return { type: 'cache', target: t, id: kv.get('id') || t, sharing, from: kv.get('from'), source: kv.get('source') ?? '', mode: mode ?? 0o755, uid, gid, ro: writable === undefined ? false : !writable };
    }
    case 'tmpfs': {
      if (!target) throw new Error('mount target is required for tmpfs mounts');
      return { type: 'tmpfs', target: resolveTarget(target), size: kv.has('size') ? parseSize(kv.get('size')!) : undefined };
    }
    case 'secret': {
      // For secrets, `source` names the secret too; giving both is ambiguous.
      if (kv.get('id') && kv.get('source')) throw new Error('both id and source are set for a secret mount: give one');
      const id = kv.get('id') || kv.get('source') || (target ? path.posix.basename(target) : '');
      if (!id) throw new Error('secret mount needs an id, a source or a target');
      const env = kv.get('env');
      target ??= env ? undefined : `/run/secrets/${id}`;
      return { type: 'secret', target: target ? resolveTarget(target) : '', id, env, required: kv.has('required') ? parseBool('required', kv.get('required')) : false, mode: mode ?? 0o400, uid, gid };
    }
    default:
      return { type: 'ssh', target: resolveTarget(target ?? `/run/buildkit/ssh_agent.${sshIndex}`), id: kv.get('id') || 'default', required: kv.has('required') ? parseBool('required', kv.get('required')) : false, mode: mode ?? 0o600, uid, gid };
  }
}
