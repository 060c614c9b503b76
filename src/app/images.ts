/** Image operations: pull, push, tag, login/logout, list, inspect, remove. */
import { NotFoundError, TsbuildError, UsageError } from '../errors/index.js';
import { STORED, configPlatform, formatPlatform, isIndexDescriptor, normalizeName, samePlatform, type CompressionSpec, type Descriptor, type ImageConfig, type Manifest, type ResolvedImage } from '../image/index.js';
import { familiarName, parseReference, sourceFor, type Credentials } from '../registry/index.js';
import { gcWithCache, type Store } from '../store/index.js';
import { logger, type OpOptions } from './events.js';
import { pullInto, pushTo, registryClient, type RegistryOptions } from './registry.js';
import { writeOutputs } from './outputs.js';
import { platformFlag } from './platform.js';
import { dockerConfig, dockerRootFS } from './dockershape.js';
import type { Writable } from 'node:stream';

export interface PullRequest extends RegistryOptions {
  ref: string;
  platform?: string;
}

export async function pull(store: Store, req: PullRequest, o: OpOptions = {}): Promise<{ name: string; manifestDigest: string }> {
  const img = await pullInto(store, parseReference(req.ref), { ...req, signal: o.signal, log: o.onEvent ? logger(o) : undefined });
  return { name: img.name!, manifestDigest: img.manifestDigest };
}

/** `pull --all-tags REPOSITORY`: every tag the registry lists, each pulled in turn. */
export async function pullAllTags(store: Store, req: PullRequest, o: OpOptions = {}): Promise<{ name: string; manifestDigest: string }[]> {
  const ref = parseReference(req.ref);
  const last = req.ref.slice(req.ref.lastIndexOf('/') + 1);
  if (last.includes(':') || last.includes('@')) throw new UsageError(`pull --all-tags takes a repository without a tag or digest, e.g. tsbuild pull -a localhost:5000/app (got ${req.ref})`);
  const client = registryClient(ref.domain, req, store.root, o.onEvent ? logger(o) : undefined);
  const tags = await client.listTags(ref.path, o.signal);
  if (tags.length === 0) throw new NotFoundError(`${req.ref} has no tags in its registry`, 'NO_TAGS');
  const out: { name: string; manifestDigest: string }[] = [];
  for (const t of tags) out.push(await pull(store, { ...req, ref: `${req.ref}:${t}` }, o));
  return out;
}

export interface PushRequest extends RegistryOptions {
  /** A local image name or id. */
  image: string;
  /** Where to push (default: the image's own name). */
  dest?: string;
  compression: CompressionSpec;
  chunkSize?: number;
}

export async function push(store: Store, req: PushRequest, o: OpOptions = {}): Promise<{ digest: string; reference: string }> {
  const dest = req.dest ?? req.image;
  parseReference(dest);
  let img: ResolvedImage;
  try {
    img = store.content.resolve(req.image);
  } catch (e) {
    if (!(e instanceof NotFoundError)) throw e;
    img = store.content.resolve(familiarName(parseReference(req.image)));
  }
  return pushTo(store, img.index?.digest ?? img.manifestDigest, dest, { ...req, signal: o.signal, log: o.onEvent ? logger(o) : undefined });
}

export function tag(store: Store, source: string, target: string): string {
  const img = store.content.resolve(source);
  const name = familiarName(parseReference(target));
  if (name.includes('@')) throw new UsageError(`cannot tag with a digest (${target}): give a name and tag`);
  // A multi-platform image is tagged as a whole (its index).
  const desc = img.index ?? store.content.list().find((r) => r.manifest.digest === img.manifestDigest)?.manifest ?? { mediaType: img.manifest.mediaType, digest: img.manifestDigest, size: store.content.blobSize(img.manifestDigest) };
  store.content.tag(name, desc);
  return name;
}

/** The registry host of a `login`/`logout` argument (a host, host:port or URL). */
export function registryHost(arg: string): string {
  return parseReference(`${arg.replace(/^https?:\/\//, '').replace(/\/.*$/, '')}/x`).domain;
}

/** Proves the credentials against the registry, then stores them; returns where they went. */
export async function login(root: string, req: RegistryOptions & { host: string; credentials: Credentials }): Promise<string> {
  const domain = registryHost(req.host);
  const client = registryClient(domain, req, root, undefined, async () => req.credentials);
  // /v2/ answers 200 only once the challenge was met with these credentials.
  const res = await client.request('GET', '/v2/');
  if (res.status !== 200) await client.fail(res, `login to ${domain}`);
  await res.body?.cancel().catch(() => undefined);
  const source = sourceFor(domain);
  await source.store(domain, req.credentials);
  return source.name;
}

export async function logout(host: string): Promise<string> {
  const domain = registryHost(host);
  if (!(await sourceFor(domain).erase(domain))) throw new TsbuildError('NOT_LOGGED_IN', `not logged in to ${domain}`);
  return domain;
}

export interface ImageSummary {
  /** `name:tag`, or undefined for an image without a name. */
  name?: string;
  id: string;
  manifestDigest: string;
  /** When it was built or pulled into this store (the config's time is the epoch, for reproducibility). */
  created?: string;
  size: number;
  /** The config's labels (for --filter label=…). */
  labels?: Record<string, string>;
}

/** Every image; one whose manifest or config cannot be read is left out and reported to `onBroken`. */
export function listImages(store: Store, o: { onBroken?: (name: string, e: Error) => void } = {}): ImageSummary[] {
  const summary = (d: Descriptor, name?: string): ImageSummary[] => {
    try {
      const m = store.content.readJSON<Manifest>(d.digest);
      const c = store.content.readJSON<ImageConfig>(m.config.digest);
      return [{ name, id: m.config.digest, manifestDigest: d.digest, created: d.annotations?.[STORED] ?? c.created, size: m.layers.reduce((a, l) => a + l.size, 0), labels: c.config?.Labels ?? undefined }];
    } catch (e) {
      if (!(e instanceof TsbuildError)) throw e;
      o.onBroken?.(name ?? d.digest, e);
      return [];
    }
  };
  // A multi-platform name is one row, as Docker's containerd store shows it: the index's digest as its
  // id, the size of every platform's layers.
  let entries: ReturnType<Store['content']['entries']> | undefined;
  const indexSummary = (d: Descriptor, name: string): ImageSummary[] => {
    entries ??= store.content.entries();
    const rows = entries.filter((e) => e.index?.digest === d.digest && e.name === name).flatMap((e) => summary(e.manifest, name));
    if (rows.length === 0) return [];
    return [{ name, id: d.digest, manifestDigest: d.digest, created: d.annotations?.[STORED] ?? rows[0]!.created, size: rows.reduce((a, r) => a + r.size, 0), labels: rows[0]!.labels }];
  };
  return [
    ...store.content.list().flatMap((r) => (isIndexDescriptor(r.manifest) ? indexSummary(r.manifest, r.name) : summary(r.manifest, r.name))),
    ...store.content.dangling().flatMap((d) => summary(d)),
  ];
}

/** `inspect`: Docker's field names, plus the manifest. */
export function inspectImage(store: Store, ref: string): Record<string, unknown> {
  const r = store.content.resolve(ref);
  const names = allNames(store, r);
  const size = r.manifest.layers.reduce((a, l) => a + l.size, 0);
  const stored = r.manifest.annotations?.[STORED];
  return {
    // Each repository's name at the stored manifest's digest, as Docker's containerd image store lists them.
    Id: r.configDigest, RepoTags: names, RepoDigests: [...new Set(names.map((n) => `${n.replace(/@.*$/, '').replace(/:[^:/]+$/, '')}@${r.index?.digest ?? r.manifestDigest}`))],
    Parent: '', Comment: '', Created: r.config.created ?? '', DockerVersion: '', Author: r.config.author ?? '',
    Config: dockerConfig({ ...r.config.config }), Architecture: r.config.architecture, Variant: r.config.variant ?? '', Os: r.config.os,
    Size: size, VirtualSize: size, RootFS: dockerRootFS(r.config), Metadata: { LastTagTime: stored ?? '' },
    // tsbuild's own, beside Docker's fields: the digest, history and manifest it stored.
    Digest: r.manifestDigest, History: r.config.history, Manifest: r.manifest,
    ...(r.index ? { Index: { digest: r.index.digest, ...store.content.readJSON<object>(r.index.digest) } } : {}),
  };
}

const ID_RE = /^(sha256:)?[a-f0-9]{4,64}$/;

/** Every name the store gives the image with this manifest. */
function allNames(store: Store, img: ResolvedImage): string[] {
  const digest = img.index?.digest ?? img.manifestDigest;
  return store.content.list().filter((x) => x.manifest.digest === digest).map((x) => x.name);
}

/** What a reference names, as Docker reads it: a name is itself; an id (or an unnamed image) is all its names. */
function namesOf(store: Store, ref: string, img: ResolvedImage): { names: string[]; byId: boolean } {
  const byId = !img.name || ID_RE.test(ref);
  return { names: byId ? allNames(store, img) : [img.name!], byId };
}

/** `rmi`: untags (a name: that name; an id: every name), deletes what nothing needs, then GC. */
/**
 * `rmi`: untags, and deletes what no image, container or kept cache record needs any more. With
 * `prune: false` (`--no-prune`) that data stays until the next prune or GC, as Docker keeps the
 * untagged parents: a re-tag or rebuild soon after finds its layers still there.
 */
export async function removeImages(store: Store, refs: string[], o: { force?: boolean; prune?: boolean; onUntag?: (name: string) => void; onDelete?: (id: string) => void }): Promise<void> {
  for (const ref of refs) {
    let r: ResolvedImage;
    try {
      r = store.content.resolve(ref);
    } catch (e) {
      // A name whose manifest or config is damaged can still be removed: that is the repair.
      const name = store.content.list().find((x) => x.name === normalizeName(ref))?.name;
      if (!(e instanceof TsbuildError) || e.code !== 'BLOB_CORRUPT' && e.code !== 'BLOB_NOT_FOUND' || !name) throw e;
      store.content.untag(name);
      o.onUntag?.(name);
      continue;
    }
    const users = store.containers.list().filter((c) => c.imageId === r.configDigest);
    if (users.length && !o.force) {
      throw new TsbuildError('IMAGE_IN_USE', `image ${ref} is used by container ${users[0]!.name}: remove it with "tsbuild rm ${users[0]!.name}" or use -f`);
    }
    const { names, byId } = namesOf(store, ref, r);
    for (const n of names) {
      store.content.untag(n);
      o.onUntag?.(n);
    }
    if (byId) store.content.removeDangling(r.manifestDigest);
    if (!store.content.list().some((x) => x.manifest.digest === (r.index?.digest ?? r.manifestDigest))) o.onDelete?.(r.index?.digest ?? r.configDigest);
  }
  if (o.prune !== false) await gcWithCache(store);
}

export interface HistoryRow {
  /** The layer's digest for entries that made one (the top row's is the image id), else undefined. */
  id?: string;
  created?: string;
  createdBy: string;
  size: number;
  comment: string;
}

/** `history IMAGE`: the config's history, newest first, each entry with the layer it made. */
export function imageHistory(store: Store, ref: string): HistoryRow[] {
  const img = store.content.resolve(ref);
  const layers = [...img.manifest.layers];
  const rows = (img.config.history ?? []).map((h) => {
    const layer = h.empty_layer ? undefined : layers.shift();
    return { id: layer?.digest, created: h.created, createdBy: h.created_by ?? '', size: layer?.size ?? 0, comment: h.comment ?? '' };
  });
  rows.reverse();
  if (rows[0]) rows[0].id = img.configDigest;
  return rows;
}

/** `save`: one image as a Docker (default) or OCI archive, to a file or a stream. */
export async function saveImage(store: Store, req: { image: string; output: string; format: 'docker' | 'oci'; stdout?: Writable; platform?: string }, o: OpOptions = {}): Promise<void> {
  // A multi-platform image saves the entry for --platform (default: this machine's), as docker save --platform.
  const want = req.platform !== undefined ? platformFlag(req.platform) : undefined;
  const img = store.content.resolve(req.image, want);
  const have = configPlatform(img.config);
  if (want && !img.index && !samePlatform(have, want)) {
    throw new NotFoundError(`image ${req.image} is ${formatPlatform(have)}, and does not provide ${formatPlatform(want)}`, 'PLATFORM_NOT_IN_INDEX');
  }
  const { names } = namesOf(store, req.image, img);
  await writeOutputs(store, [{ type: req.format, dest: req.output, names, push: false }], img.manifestDigest, { signal: o.signal, log: logger(o), stdout: req.stdout });
}
