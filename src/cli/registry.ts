/** `tsbuild pull`, `push`, `tag`, `login`, `logout`, and the registry plumbing `build` shares. */
import fs from 'node:fs';
import { UsageError, NotFoundError, TsbuildError } from '../errors/index.js';
import { parseCompression, type CompressionSpec, type ResolvedImage } from '../image/index.js';
import { unpackLayers } from '../ops/index.js';
import {
  BlobSources,
  RegistryClient,
  familiarName,
  formatReference,
  isLoopbackHost,
  lookupCredentials,
  parsePlatform,
  parseReference,
  pullImage,
  pushImage,
  sourceFor,
  type Credentials,
  type Reference,
  type TransferEvent,
  type RegistryEvent,
} from '../registry/index.js';
import { flagBool, flagList, flagStr, type FlagSpec, type Parsed, rootFlag, helpFlag } from './args.js';
import { humanSize as formatSize } from './format.js';
import { openStore, readStoreConfig, storeRoot, type Store } from './store.js';
import path from 'node:path';

export const insecureFlag: FlagSpec = { name: 'insecure-registry', type: 'list', arg: 'host[:port]', help: 'allow plain HTTP to this registry (repeatable; loopback hosts always allowed)' };
export const compressionFlags: FlagSpec[] = [
  { name: 'compression', type: 'string', arg: 'gzip|zstd|uncompressed', help: 'layer compression for pushed or exported layers (default gzip)' },
  { name: 'compression-level', type: 'string', arg: 'N', help: 'compression level (gzip 0-9, zstd 1-19)' },
  { name: 'chunk-size', type: 'string', arg: 'bytes', help: 'upload blobs in PATCH chunks of this size (default: one PUT)' },
];

export const pullFlags: FlagSpec[] = [
  { name: 'platform', type: 'string', arg: 'os/arch[/variant]', help: 'platform to pick from a multi-platform image (default: this machine)' },
  { name: 'quiet', short: 'q', type: 'bool', help: 'print only the image name and digest' },
  { name: 'snapshotter', type: 'string', arg: 'overlayfs', help: 'storage driver to unpack into' },
  insecureFlag,
  rootFlag,
  helpFlag,
];
export const pushFlags: FlagSpec[] = [...compressionFlags, { name: 'quiet', short: 'q', type: 'bool', help: 'print only the digest' }, insecureFlag, rootFlag, helpFlag];
export const tagFlags: FlagSpec[] = [rootFlag, helpFlag];
export const loginFlags: FlagSpec[] = [
  { name: 'username', short: 'u', type: 'string', arg: 'user', help: 'user name' },
  { name: 'password', short: 'p', type: 'string', arg: 'password', help: 'password (prefer --password-stdin)' },
  { name: 'password-stdin', type: 'bool', help: 'read the password from stdin' },
  insecureFlag,
  rootFlag,
  helpFlag,
];
export const logoutFlags: FlagSpec[] = [helpFlag];

/** Plain HTTP allowed: loopback, `--insecure-registry`, or `insecureRegistries` in the store's config.json. */
export function isInsecure(domain: string, p: Parsed, root: string): boolean {
  if (isLoopbackHost(domain)) return true;
  if (flagList(p, 'insecure-registry').includes(domain)) return true;
  return (readStoreConfig(root).insecureRegistries ?? []).includes(domain);
}

export function registryClient(domain: string, p: Parsed, root: string, log?: (line: string) => void, credentials?: (d: string) => Promise<Credentials | undefined>): RegistryClient {
  const retryEnv = process.env.TSBUILD_REGISTRY_RETRY_MS;
  return new RegistryClient({
    domain,
    insecure: isInsecure(domain, p, root),
    credentials: credentials ?? lookupCredentials,
    retryBaseMs: retryEnv ? Number(retryEnv) : undefined,
    onEvent: (e: RegistryEvent) => {
      if (e.type === 'retry') log?.(`retrying ${e.what} (attempt ${e.attempt}): ${e.reason}`);
    },
  });
}

export function blobSources(root: string): BlobSources {
  return new BlobSources(path.join(root, 'registry'));
}

function short(d: string): string {
  return d.replace(/^sha256:/, '').slice(0, 12);
}

export function transferLogger(log: (line: string) => void): (e: TransferEvent | { type: 'compress'; digest: string }) => void {
  return (e) => {
    switch (e.type) {
      case 'start':
        log(`${short(e.digest)}: ${e.offset > 0 ? `resuming at ${formatSize(e.offset)} of` : 'transferring'} ${formatSize(e.size)}`);
        break;
      case 'done':
        log(`${short(e.digest)}: done`);
        break;
      case 'exists':
        log(`${short(e.digest)}: already there`);
        break;
      case 'mounted':
        log(`${short(e.digest)}: mounted from ${e.from}`);
        break;
      case 'retry':
        log(`${short(e.digest)}: retry ${e.attempt}: ${e.reason}`);
        break;
      case 'compress':
        break;
    }
  };
}

/** Pulls `ref` into the store and unpacks it; returns it as the store resolves it. */
export async function pullInto(store: Store, ref: Reference, p: Parsed, o: { signal?: AbortSignal; log?: (line: string) => void; platform?: string }): Promise<ResolvedImage> {
  const client = registryClient(ref.domain, p, store.root, o.log);
  const pulled = await pullImage({
    client,
    ref,
    store: store.content,
    platform: o.platform ? parsePlatform(o.platform) : undefined,
    signal: o.signal,
    sources: blobSources(store.root),
    onEvent: o.log ? transferLogger(o.log) : undefined,
  });
  const layers = pulled.manifest.layers.map((d, i) => ({ diffID: pulled.config.rootfs.diff_ids[i]!, descriptor: d }));
  await unpackLayers({ storeRoot: store.root, store: store.content, snapshotter: store.snapshotter }, layers, { signal: o.signal });
  return store.content.resolve(pulled.name!);
}

export type PullPolicy = 'missing' | 'always' | 'never';

/** `--pull` on the command line, else `TSBUILD_PULL`, else `pull` in the store's config.json, else missing. */
export function pullPolicy(flag: string | boolean | undefined, root: string): PullPolicy {
  const v = flag === true ? 'always' : flag === false || flag === undefined ? process.env.TSBUILD_PULL ?? readStoreConfig(root).pull ?? 'missing' : flag;
  if (v !== 'missing' && v !== 'always' && v !== 'never') throw new UsageError(`pull policy "${v}": use missing, always or never`);
  return v;
}

/** The local image for a FROM or run: the store's, or pulled as the pull policy says. */
export async function resolveOrPull(store: Store, name: string, p: Parsed, o: { signal?: AbortSignal; log?: (line: string) => void; policy: PullPolicy; platform?: string }): Promise<ResolvedImage> {
  const tryLocal = (cand: string): ResolvedImage | undefined => {
    try {
      return store.content.resolve(cand);
    } catch (e) {
      if (e instanceof NotFoundError) return undefined;
      throw e;
    }
  };
  const always = o.policy === 'always';
  // Image ids and local names first: an id is not a reference.
  const byName = always ? undefined : tryLocal(name);
  if (byName) return byName;
  if (o.policy === 'never' || /^(sha256:)?[a-f0-9]{12,64}$/.test(name)) return store.content.resolve(name);
  const ref = parseReference(name);
  const local = familiarName(ref);
  const byRef = always ? undefined : tryLocal(local);
  if (byRef) return byRef;
  o.log?.(`pulling ${local}`);
  try {
    return await pullInto(store, ref, p, o);
  } catch (e) {
    if (e instanceof TsbuildError && !always && (e.code === 'REGISTRY_UNREACHABLE' || e.code === 'MANIFEST_UNKNOWN' || e.code === 'NAME_UNKNOWN' || e.code === 'REGISTRY_UNAUTHORIZED')) {
      throw new TsbuildError(e.code, `image "${name}" is not in the local store and pulling ${formatReference(ref)} failed: ${e.message}`, { cause: e });
    }
    throw e;
  }
}

export async function pullCommand(p: Parsed, signal: AbortSignal): Promise<number> {
  if (p.positional.length !== 1) throw new UsageError('pull takes one image reference, e.g. tsbuild pull localhost:5000/busybox:latest');
  const ref = parseReference(p.positional[0]!);
  const store = await openStore(storeRoot(flagStr(p, 'root')), flagStr(p, 'snapshotter'));
  const quiet = flagBool(p, 'quiet');
  const log = quiet ? undefined : (l: string) => process.stderr.write(l + '\n');
  const img = await pullInto(store, ref, p, { signal, log, platform: flagStr(p, 'platform') });
  process.stdout.write(`${img.name}: ${img.manifestDigest}\n`);
  return 0;
}

export function compressionFrom(p: Parsed): CompressionSpec {
  return parseCompression(flagStr(p, 'compression') ?? 'gzip', flagStr(p, 'compression-level'));
}

export function chunkSizeFrom(p: Parsed): number | undefined {
  const c = flagStr(p, 'chunk-size');
  if (c === undefined) return undefined;
  const n = Number(c);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--chunk-size ${c}: give a number of bytes`);
  return n;
}

/** Pushes a local image to `target` (a reference string). */
export async function pushTo(store: Store, manifestDigest: string, target: string, p: Parsed, o: { signal?: AbortSignal; log?: (l: string) => void }): Promise<{ digest: string; reference: string }> {
  const ref = parseReference(target);
  const client = registryClient(ref.domain, p, store.root, o.log);
  const r = await pushImage({
    client,
    ref,
    store: store.content,
    manifestDigest,
    compression: compressionFrom(p),
    chunkSize: chunkSizeFrom(p),
    signal: o.signal,
    sources: blobSources(store.root),
    onEvent: o.log ? transferLogger(o.log) : undefined,
  });
  return { digest: r.digest, reference: r.reference };
}

export async function pushCommand(p: Parsed, signal: AbortSignal): Promise<number> {
  if (p.positional.length < 1 || p.positional.length > 2) throw new UsageError('push takes an image name and optionally a destination: tsbuild push NAME[:TAG] [REGISTRY/NAME[:TAG]]');
  const store = await openStore(storeRoot(flagStr(p, 'root')));
  const src = p.positional[0]!;
  const dest = p.positional[1] ?? src;
  parseReference(dest);
  let img: ResolvedImage;
  try {
    img = store.content.resolve(src);
  } catch (e) {
    if (!(e instanceof NotFoundError)) throw e;
    img = store.content.resolve(familiarName(parseReference(src)));
  }
  const quiet = flagBool(p, 'quiet');
  const log = quiet ? undefined : (l: string) => process.stderr.write(l + '\n');
  const r = await pushTo(store, img.manifestDigest, dest, p, { signal, log });
  process.stdout.write(quiet ? `${r.digest}\n` : `${r.reference}: digest: ${r.digest}\n`);
  return 0;
}

export async function tagCommand(p: Parsed): Promise<number> {
  if (p.positional.length !== 2) throw new UsageError('tag takes a source image and a new name: tsbuild tag SOURCE TARGET[:TAG]');
  const store = await openStore(storeRoot(flagStr(p, 'root')));
  const img = store.content.resolve(p.positional[0]!);
  const target = familiarName(parseReference(p.positional[1]!));
  if (target.includes('@')) throw new UsageError(`cannot tag with a digest (${p.positional[1]}): give a name and tag`);
  const desc = store.content.list().find((r) => r.manifest.digest === img.manifestDigest)?.manifest ?? { mediaType: img.manifest.mediaType, digest: img.manifestDigest, size: store.content.blobSize(img.manifestDigest) };
  store.content.tag(target, desc);
  return 0;
}

function readStdin(): string {
  try {
    return fs.readFileSync(0, 'utf8').replace(/\r?\n$/, '');
  } catch (e) {
    throw new UsageError(`cannot read the password from stdin: ${(e as Error).message}`);
  }
}

export async function loginCommand(p: Parsed): Promise<number> {
  if (p.positional.length !== 1) throw new UsageError('login takes one registry host, e.g. tsbuild login -u me --password-stdin registry.example.com');
  const domain = parseReference(`${p.positional[0]!.replace(/^https?:\/\//, '').replace(/\/.*$/, '')}/x`).domain;
  const username = flagStr(p, 'username');
  let password = flagStr(p, 'password');
  if (flagBool(p, 'password-stdin')) {
    if (password !== undefined) throw new UsageError('--password and --password-stdin are exclusive');
    password = readStdin();
  }
  if (!username || password === undefined) throw new UsageError('login needs --username and a password (--password-stdin or --password)');
  if (flagStr(p, 'password') !== undefined) process.stderr.write('WARNING: --password shows the password in the process list; use --password-stdin\n');
  const creds: Credentials = { username, password };
  const root = storeRoot(flagStr(p, 'root'));
  const client = registryClient(domain, p, root, undefined, async () => creds);
  // Proving the credentials: /v2/ answers 200 only once the challenge was met with them.
  const res = await client.request('GET', '/v2/');
  if (res.status !== 200) await client.fail(res, `login to ${domain}`);
  await res.body?.cancel().catch(() => undefined);
  const source = sourceFor(domain);
  await source.store(domain, creds);
  process.stdout.write(`Login Succeeded (credentials stored in ${source.name})\n`);
  return 0;
}

export async function logoutCommand(p: Parsed): Promise<number> {
  if (p.positional.length !== 1) throw new UsageError('logout takes one registry host');
  const domain = parseReference(`${p.positional[0]!.replace(/^https?:\/\//, '').replace(/\/.*$/, '')}/x`).domain;
  const removed = await sourceFor(domain).erase(domain);
  if (!removed) throw new TsbuildError('NOT_LOGGED_IN', `not logged in to ${domain}`);
  process.stdout.write(`Removing login credentials for ${domain}\n`);
  return 0;
}
