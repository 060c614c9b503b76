/**
 * Cache-key material, declared per op kind. Every field of an op's spec is in its key except the
 * short exclusion list below; the table is typed so that a new OpSpec field does not compile until it
 * says how it enters the key. Each field becomes named entries (`op:<field>` as JSON, or, where a miss
 * should name the thing, one entry per variable or mount), so `explainMiss` can say what changed.
 * What an op reads from its inputs (parent snapshot, context files, URL content) is added by the
 * cache handle, which has the inputs.
 */
import type { OpSpec } from './types.js';

/** Not in any key: they describe the image's history, not the filesystem the op produces. */
export const KEY_EXCLUDED = ['history', 'createdBy'] as const;

type Kind = OpSpec['kind'];
type Spec<K extends Kind> = Extract<OpSpec, { kind: K }>;
type KeyFields<K extends Kind> = Exclude<keyof Spec<K>, 'kind' | (typeof KEY_EXCLUDED)[number]>;
type Encoder<K extends Kind> = (op: Spec<K>) => Record<string, string>;

/** `op:<field>` = the value as JSON; an absent optional field adds nothing, so old keys stay valid. */
const field =
  <K extends Kind>(name: KeyFields<K> & string): Encoder<K> =>
  (op) => {
    const v = (op as Record<string, unknown>)[name];
    return v === undefined ? {} : { [`op:${name}`]: JSON.stringify(v) };
  };
/** `env:NAME` for ENV values and `arg:NAME` for build args, so a miss names the variable. */
const execEnv: Encoder<'exec'> = (op) => {
  const m: Record<string, string> = {};
  for (const e of op.env) {
    const i = e.indexOf('=');
    const k = i < 0 ? e : e.slice(0, i);
    m[`${op.argNames.includes(k) ? 'arg' : 'env'}:${k}`] = i < 0 ? '' : e.slice(i + 1);
  }
  return m;
};

/** One entry per field of every op kind; the compiler checks that none is missing. */
export const KEY_MATERIAL: { [K in Kind]: { [F in KeyFields<K>]: Encoder<K> } } = {
  scratch: {},
  image: {
    // A base image is named by its content: `base` = name@manifest digest.
    name: () => ({}),
    manifestDigest: (op) => ({ base: `${op.name}@${op.manifestDigest}` }),
  },
  context: { dir: field('dir'), ignore: field('ignore') },
  exec: {
    args: field('args'),
    cwd: field('cwd'),
    user: field('user'),
    network: field('network'),
    hostname: field('hostname'),
    files: field('files'),
    insecure: field('insecure'),
    extraHosts: field('extraHosts'),
    ulimits: field('ulimits'),
    shmSize: field('shmSize'),
    platform: field('platform'),
    env: execEnv,
    // Which variables are ARGs decides their entry names in `env`.
    argNames: () => ({}),
    mounts: (op) => Object.fromEntries(op.mounts.map((m, i) => [`mount:${i}`, JSON.stringify(m)])),
  },
  copy: {
    sources: field('sources'),
    contents: field('contents'),
    dest: field('dest'),
    chown: field('chown'),
    chmod: field('chmod'),
    fromContext: field('fromContext'),
    excludes: field('excludes'),
    verb: field('verb'),
    parents: field('parents'),
    unpack: field('unpack'),
    checksum: field('checksum'),
    link: field('link'),
  },
  mkdir: { path: field('path'), user: field('user') },
  // The export is never cached: its result is the image itself, written every time.
  export: { config: () => ({}), names: () => ({}) },
};

/** The op's own key material (without what its inputs contribute); undefined for ops never cached. */
export function opMaterial(op: OpSpec): Record<string, string> | undefined {
  if (op.kind === 'export') return undefined;
  const table = KEY_MATERIAL[op.kind] as Record<string, (o: OpSpec) => Record<string, string>>;
  const m: Record<string, string> = { 'op:kind': op.kind };
  for (const name of Object.keys(table).sort()) Object.assign(m, table[name]!(op));
  return m;
}
