/**
 * Registry plumbing every operation shares: a client per registry with the store's and the request's
 * insecure-registry list, transfer progress as log lines, pulling into the store (verified, unpacked
 * into ChainID snapshots), the pull policy and implicit pulls, and pushing.
 */
import { NotFoundError, TsbuildError, UsageError, errnoCode } from '../errors/index.js';
import { configPlatform, formatPlatform, normalizePlatform, samePlatform, type CompressionSpec, type Platform, type ResolvedImage } from '../image/index.js';
import {
  RegistryClient, familiarName, formatReference, isLoopbackHost, lookupCredentials, parseReference, pullImage, pushImage,
  type Credentials, type Reference, type TransferEvent,
} from '../registry/index.js';
import { imageLayers, readStoreConfig, unpackLayers, withLease, type Store } from '../store/index.js';
import { humanSize } from './format.js';

/** How to reach registries: what the request adds to the store's config. */
export interface RegistryOptions {
  /** Registries reached over plain HTTP besides loopback (`--insecure-registry`). */
  insecureRegistries?: string[];
  /** Base of the retry back-off in ms (tests shorten it). */
  retryBaseMs?: number;
}

/** Plain HTTP allowed: loopback, the request's list, or `insecureRegistries` in the store's config.json. */
export function isInsecure(domain: string, o: RegistryOptions, root: string): boolean {
  if (isLoopbackHost(domain)) return true;
  if ((o.insecureRegistries ?? []).includes(domain)) return true;
  return (readStoreConfig(root).insecureRegistries ?? []).includes(domain);
}

export function registryClient(domain: string, o: RegistryOptions, root: string, log?: (line: string) => void, credentials?: (d: string) => Promise<Credentials | undefined>): RegistryClient {
  return new RegistryClient({
    domain,
    insecure: isInsecure(domain, o, root),
    credentials: credentials ?? lookupCredentials,
    retryBaseMs: o.retryBaseMs,
    onEvent: (e) => {
      if (e.type === 'retry') log?.(`retrying ${e.what} (attempt ${e.attempt}): ${e.reason}`);
    },
  });
}

function short(d: string): string {
  return d.replace(/^sha256:/, '').slice(0, 12);
}

export function transferLogger(log: (line: string) => void): (e: TransferEvent | { type: 'compress'; digest: string }) => void {
  return (e) => {
    switch (e.type) {
      case 'start':
        log(`${short(e.digest)}: ${e.offset > 0 ? `resuming at ${humanSize(e.offset)} of` : 'transferring'} ${humanSize(e.size)}`);
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
export async function pullInto(store: Store, ref: Reference, o: RegistryOptions & { signal?: AbortSignal; log?: (line: string) => void; platform?: string }): Promise<ResolvedImage> {
  // Blobs and snapshots land before the name does: a lease keeps them from a GC run meanwhile.
  return withLease(store.root, () => pullLeased(store, ref, o));
}

async function pullLeased(store: Store, ref: Reference, o: RegistryOptions & { signal?: AbortSignal; log?: (line: string) => void; platform?: string }): Promise<ResolvedImage> {
  // Layers are unpacked as they download; the name is given only once every layer is unpacked and
  // every blob verified: a pull that fails or is killed meanwhile leaves no image that lists but
  // cannot run (its verified blobs stay, for the next pull).
  let layer = '';
  let pulled: Awaited<ReturnType<typeof pullImage>>;
  try {
    pulled = await pullImage({
      client: registryClient(ref.domain, o, store.root, o.log),
      ref,
      store: store.content,
      platform: o.platform ? normalizePlatform(o.platform) : undefined,
      signal: o.signal,
      sources: store.blobSources,
      onEvent: o.log ? transferLogger(o.log) : undefined,
      deferTag: true,
      whileLayers: ({ manifest, config, open, complete }) =>
        unpackLayers({ storeRoot: store.root, store: store.content, snapshotter: store.snapshotter }, imageLayers(familiarName(ref), manifest, config), {
          signal: o.signal,
          onLayer: (_i, d) => (layer = d.digest),
          onWarning: (message) => o.log?.(`WARNING: ${message}`),
          source: { open, complete },
        }).then(() => undefined),
    });
  } catch (e) {
    if (!(e instanceof TsbuildError && e.code === 'NO_SPACE') && (errnoCode(e) === 'ENOSPC' || /ENOSPC|no space left/i.test((e as Error).message))) {
      throw new TsbuildError('NO_SPACE', `no space left on device unpacking layer ${layer} of ${familiarName(ref)} into the store at ${store.root}: free space ("tsbuild system prune", "tsbuild prune") and pull again`, { cause: e });
    }
    throw e;
  }
  store.content.tag(pulled.name!, pulled.descriptor);
  return store.content.resolve(pulled.name!);
}

export type PullPolicy = 'missing' | 'always' | 'never';

/** The request's policy, else `TSBUILD_PULL`, else `pull` in the store's config.json, else missing. */
export function pullPolicy(requested: string | undefined, root: string): PullPolicy {
  const v = requested ?? process.env.TSBUILD_PULL ?? readStoreConfig(root).pull ?? 'missing';
  if (v !== 'missing' && v !== 'always' && v !== 'never') throw new UsageError(`pull policy "${v}": use missing, always or never`);
  return v;
}

const UNREACHABLE = new Set(['REGISTRY_UNREACHABLE', 'MANIFEST_UNKNOWN', 'NAME_UNKNOWN', 'REGISTRY_UNAUTHORIZED']);

function imagePlatform(img: ResolvedImage): Platform {
  return { ...configPlatform(img.config), os: img.config.os || 'linux', architecture: img.config.architecture || 'unknown' };
}

function platformMismatch(name: string, img: ResolvedImage, want: Platform, isId: boolean): TsbuildError {
  const how = isId ? 'name an image of that platform' : `pull it for that platform (tsbuild pull --platform ${formatPlatform(want)} ${name}), or allow pulls (the pull policy "missing", the default)`;
  return new TsbuildError('PLATFORM_MISMATCH', `image "${name}" is ${formatPlatform(imagePlatform(img))}, not ${formatPlatform(want)} as asked: ${how}`);
}

/** The local image for a FROM, COPY --from or run: the store's, or pulled as the pull policy says. */
export async function resolveOrPull(store: Store, name: string, o: RegistryOptions & { signal?: AbortSignal; log?: (line: string) => void; policy: PullPolicy; platform?: string }): Promise<ResolvedImage> {
  const want = o.platform ? normalizePlatform(o.platform) : undefined;
  let missingPlatform: NotFoundError | undefined;
  const tryLocal = (cand: string): ResolvedImage | undefined => {
    try {
      return store.content.resolve(cand, want);
    } catch (e) {
      if (e instanceof NotFoundError && e.code === 'IMAGE_NOT_FOUND') return undefined;
      // A multi-platform image here without this platform: pulled for it if pulls are allowed.
      if (e instanceof NotFoundError && e.code === 'PLATFORM_NOT_IN_INDEX') {
        missingPlatform ??= e;
        return undefined;
      }
      // The name is here but its data is not (an rmi and its GC raced this command, or the store is
      // damaged): say so, rather than pulling some other image of that name from a registry.
      if (e instanceof NotFoundError && e.code === 'BLOB_NOT_FOUND') {
        throw new NotFoundError(`No such image: ${cand} (the store names it, but ${e.message.replace(/: pull or rebuild the image$/, '')}; it was removed while this command started, or the store is damaged): pull or rebuild it`, 'IMAGE_GONE');
      }
      throw e;
    }
  };
  const always = o.policy === 'always';
  // A local image of another platform is not this one (BuildKit resolves per platform): pulled for it.
  let other: ResolvedImage | undefined;
  const fits = (img: ResolvedImage | undefined) => {
    if (!img || !want || samePlatform(imagePlatform(img), want)) return img;
    other ??= img;
    return undefined;
  };
  // Image ids and local names first: an id is not a reference.
  const byName = fits(always ? undefined : tryLocal(name));
  if (byName) return byName;
  const isId = /^(sha256:)?[a-f0-9]{12,64}$/.test(name);
  if (other && (o.policy === 'never' || isId)) throw platformMismatch(name, other, want!, isId);
  if (missingPlatform && (o.policy === 'never' || isId)) throw missingPlatform;
  if (o.policy === 'never' || isId) return store.content.resolve(name);
  const ref = parseReference(name);
  const local = familiarName(ref);
  const byRef = fits(always ? undefined : tryLocal(local));
  if (byRef) return byRef;
  o.log?.(`pulling ${local}${other ? ` for ${formatPlatform(want!)} (the local image is ${formatPlatform(imagePlatform(other))})` : ''}`);
  try {
    return await pullInto(store, ref, o);
  } catch (e) {
    if (e instanceof TsbuildError && !always && UNREACHABLE.has(e.code)) {
      throw new TsbuildError(e.code, `image "${name}" is not in the local store and pulling ${formatReference(ref)} failed: ${e.message}`, { cause: e });
    }
    throw e;
  }
}

export interface PushOptions extends RegistryOptions {
  compression: CompressionSpec;
  /** Upload in PATCH chunks of this many bytes (default: one PUT). */
  chunkSize?: number;
  signal?: AbortSignal;
  log?: (l: string) => void;
}

/** Pushes a local image (by manifest digest) to `target`, a reference string. */
export async function pushTo(store: Store, manifestDigest: string, target: string, o: PushOptions): Promise<{ digest: string; reference: string }> {
  const ref = parseReference(target);
  const r = await pushImage({
    client: registryClient(ref.domain, o, store.root, o.log),
    ref,
    store: store.content,
    manifestDigest,
    compression: o.compression,
    chunkSize: o.chunkSize,
    signal: o.signal,
    sources: store.blobSources,
    onEvent: o.log ? transferLogger(o.log) : undefined,
  });
  return { digest: r.digest, reference: r.reference };
}
