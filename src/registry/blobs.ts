/**
 * Blob transfers. Downloads grow a partial file in the store's tmp/ while hashing; an interruption keeps
 * the verified-so-far prefix and the next attempt (or the next `tsbuild pull`) resumes with a Range
 * request. Only a file whose full digest and size match is moved into the store; a wrong byte deletes
 * the partial, so nothing unverified is ever stored. Uploads stream from the store, monolithic by
 * default, chunked (PATCH with Content-Range) when asked or when the registry refuses the other form.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { Readable } from 'node:stream';
import { acquireLock, Writeback, WriteBehind } from '../fsutil/index.js';
import { CancelledError, TsbuildError } from '../errors/index.js';
import type { ContentStore, Descriptor } from '../image/index.js';
import type { RegistryClient } from './client.js';
import type { BlobFollower } from './follow.js';
import { backoff, isTransient, describeNetworkError, linkedController, sleep, RegistryError } from './transport.js';

export interface TransferOptions {
  signal?: AbortSignal;
  attempts?: number;
  baseMs?: number;
  /** No byte for this long counts as a broken connection (and is resumed). */
  idleMs?: number;
  onEvent?: (e: TransferEvent) => void;
  /** Told of every byte a download writes, so the blob can be read as it arrives (pull's unpack). */
  follow?: BlobFollower;
}

export type TransferEvent =
  | { type: 'start'; digest: string; size: number; offset: number }
  | { type: 'done'; digest: string; size: number }
  | { type: 'exists'; digest: string; size: number }
  | { type: 'mounted'; digest: string; from: string }
  | { type: 'retry'; digest: string; attempt: number; reason: string };

class Stalled extends TsbuildError {
  constructor(ms: number) {
    super('REGISTRY_STALLED', `no data for ${ms / 1000} s`);
  }
}

async function hashFile(file: string, hash: crypto.Hash): Promise<number> {
  let n = 0;
  for await (const c of fs.createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    hash.update(c);
    n += c.length;
  }
  return n;
}

/** Iterates a stream, failing when it stays silent for `idleMs`. */
async function* watched(body: Readable, idleMs: number): AsyncGenerator<Buffer> {
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => body.destroy(new Stalled(idleMs)), idleMs);
  };
  arm();
  try {
    for await (const c of body as AsyncIterable<Buffer>) {
      arm();
      yield c;
    }
  } finally {
    clearTimeout(timer);
  }
}

/** Worth another attempt: the network, a stall, a short body, a 5xx. A wrong digest is not. */
function retryable(e: unknown): boolean {
  if (e instanceof RegistryError) return e.code === 'BLOB_TRUNCATED' || (e.status !== undefined && e.status >= 500);
  return isTransient(e) || e instanceof Stalled || (e as { code?: string }).code === 'ECONNRESET';
}

/**
 * After a failed transfer attempt: a cancel or an error that will not heal is thrown as it is, the
 * last attempt's failure becomes `giveUp(reason)`, anything else is reported and backed off from.
 */
async function afterFailure(e: unknown, attempt: number, attempts: number, desc: Descriptor, o: TransferOptions, giveUp: (why: string) => RegistryError): Promise<void> {
  if (o.signal?.aborted) throw new CancelledError();
  if (!retryable(e)) throw e;
  if (attempt + 1 >= attempts) throw giveUp(describeNetworkError(e));
  o.onEvent?.({ type: 'retry', digest: desc.digest, attempt: attempt + 1, reason: describeNetworkError(e) });
  await sleep(backoff(attempt, o.baseMs ?? 200), o.signal);
}

/**
 * Runs one transfer per blob, `concurrency` at a time. The first failure cancels the rest and is
 * thrown once they have stopped, so nothing is still writing when the caller reports it.
 */
export async function transferAll(blobs: Descriptor[], concurrency: number, parent: AbortSignal | undefined, one: (d: Descriptor, signal: AbortSignal) => Promise<void>): Promise<void> {
  const { default: PQueue } = await import('p-queue');
  const queue = new PQueue({ concurrency });
  const ac = linkedController(parent);
  try {
    await Promise.all(blobs.map((d) => queue.add(() => one(d, ac.signal))));
  } catch (e) {
    ac.abort();
    queue.clear();
    await queue.onIdle();
    throw e;
  }
}

/** Downloads `desc` from `repo` into the store unless it is there; verifies digest and size. */
export async function fetchBlob(client: RegistryClient, repo: string, desc: Descriptor, store: ContentStore, o: TransferOptions = {}): Promise<void> {
  if (store.has(desc.digest)) {
    o.onEvent?.({ type: 'exists', digest: desc.digest, size: desc.size });
    o.follow?.done(desc.digest, store.blobPath(desc.digest), desc.size);
    return;
  }
  const partial = store.ingestPath(desc.digest);
  const release = await acquireLock(partial + '.lock', { wait: true, signal: o.signal });
  try {
    if (store.has(desc.digest)) {
      o.follow?.done(desc.digest, store.blobPath(desc.digest), desc.size);
      return;
    }
    const attempts = o.attempts ?? 5;
    for (let attempt = 0; ; attempt++) {
      try {
        await fetchOnce(client, repo, desc, partial, o);
        await store.adoptBlob(partial, desc.digest);
        o.follow?.done(desc.digest, store.blobPath(desc.digest), desc.size);
        o.onEvent?.({ type: 'done', digest: desc.digest, size: desc.size });
        return;
      } catch (e) {
        await afterFailure(e, attempt, attempts, desc, o, (why) => new RegistryError('BLOB_TRANSFER', `downloading blob ${desc.digest} from ${client.domain}/${repo} failed after ${attempts} attempts (${why}); run the command again to resume`, undefined, { cause: e }));
      }
    }
  } catch (e) {
    o.follow?.failed(desc.digest, e as Error);
    throw e;
  } finally {
    release?.();
  }
}

async function fetchOnce(client: RegistryClient, repo: string, desc: Descriptor, partial: string, o: TransferOptions): Promise<void> {
  const hash = crypto.createHash('sha256');
  let have = fs.existsSync(partial) ? fs.statSync(partial).size : 0;
  if (have > desc.size) {
    fs.rmSync(partial, { force: true });
    have = 0;
  }
  if (have > 0) have = await hashFile(partial, hash);
  const { body, resumed } = await client.openBlob(repo, desc.digest, have, o.signal);
  let h = hash;
  if (have > 0 && !resumed) {
    // The server ignored the Range: start over.
    h = crypto.createHash('sha256');
    have = 0;
  }
  o.onEvent?.({ type: 'start', digest: desc.digest, size: desc.size, offset: have });
  o.follow?.begin(desc.digest, partial, have);
  // Cancellation must not depend on the HTTP layer tearing the body down (it did not always).
  const onAbort = () => body.destroy(new CancelledError());
  if (o.signal?.aborted) onAbort();
  o.signal?.addEventListener('abort', onAbort, { once: true });
  const fh = await fs.promises.open(partial, have > 0 ? 'a' : 'w').catch((e: unknown) => {
    o.signal?.removeEventListener('abort', onAbort);
    throw e;
  });
  let size = have;
  // Network pieces (about 64-128 KiB) are written in 1 MiB batches, one write in flight while the
  // next batch arrives; the follower (unpacking as the blob downloads) hears of bytes once written.
  // Writeback starts behind the writes; the follower drops what it has read (fsutil/pagecache.ts).
  const behind = new Writeback(fh.fd, have);
  const w = new WriteBehind((parts, pos) => fh.writev(parts, pos).then((r) => r.bytesWritten), {
    start: have,
    onWritten: (upTo) => {
      behind.written(upTo);
      o.follow?.progress(desc.digest, upTo);
    },
  });
  try {
    for await (const c of watched(body, o.idleMs ?? 60_000)) {
      size += c.length;
      if (size > desc.size) {
        body.destroy();
        throw new RegistryError('SIZE_MISMATCH', `blob ${desc.digest} from ${client.domain}/${repo} is larger than the ${desc.size} bytes its descriptor says; nothing was stored`);
      }
      h.update(c);
      await w.push(c);
    }
    await w.end();
    await behind.done();
  } catch (e) {
    o.signal?.removeEventListener('abort', onAbort);
    // What arrived before the failure is kept for a resume (a blob too large goes below).
    await w.abandon(!(e instanceof RegistryError && e.code === 'SIZE_MISMATCH'));
    await behind.settle();
    await fh.close();
    if (e instanceof RegistryError && e.code === 'SIZE_MISMATCH') fs.rmSync(partial, { force: true });
    // On a full disk the partial holds the space the user has to free: it goes (the pull restarts).
    if ((e as NodeJS.ErrnoException).code === 'ENOSPC') {
      fs.rmSync(partial, { force: true });
      throw new TsbuildError('NO_SPACE', `no space left on device downloading blob ${desc.digest} (${desc.size} bytes) from ${client.domain}/${repo} into the store; nothing of it was kept`, { cause: e });
    }
    throw e;
  }
  o.signal?.removeEventListener('abort', onAbort);
  await fh.close();
  // A short body keeps its verified prefix for the next attempt to resume from.
  if (size < desc.size) throw new RegistryError('BLOB_TRUNCATED', `blob ${desc.digest} ended after ${size} of ${desc.size} bytes`);
  const got = 'sha256:' + h.digest('hex');
  if (got !== desc.digest) {
    fs.rmSync(partial, { force: true });
    throw new RegistryError('DIGEST_MISMATCH', `digest mismatch on blob ${desc.digest} from ${client.domain}/${repo}: got ${got}; nothing was stored`);
  }
}

export interface UploadOptions extends TransferOptions {
  /** Send in PATCH chunks of this size instead of one PUT. */
  chunkSize?: number;
  /** Repositories on this registry known to hold the blob (cross-repository mount). */
  mountFrom?: string[];
}

/** Whether `repo` has the blob already, or got it by a cross-repository mount (no bytes sent). */
export async function remoteHas(client: RegistryClient, repo: string, desc: Descriptor, o: UploadOptions = {}): Promise<boolean> {
  const size = await client.blobSize(repo, desc.digest, ['pull', 'push'], o.signal);
  if (size === desc.size) {
    o.onEvent?.({ type: 'exists', digest: desc.digest, size: desc.size });
    return true;
  }
  for (const from of (o.mountFrom ?? []).filter((r) => r !== repo)) {
    const r = await client.startUpload(repo, { digest: desc.digest, from }, o.signal).catch(() => undefined);
    if (r?.mounted) {
      o.onEvent?.({ type: 'mounted', digest: desc.digest, from });
      return true;
    }
    // Not mountable (gone, or not allowed): the upload the registry just opened is abandoned.
  }
  return false;
}

/** Makes sure `repo` has the blob: existence check, mount, then upload with retries. */
export async function pushBlob(client: RegistryClient, repo: string, desc: Descriptor, store: ContentStore, o: UploadOptions = {}): Promise<void> {
  if (await remoteHas(client, repo, desc, o)) return;
  const attempts = o.attempts ?? 5;
  let chunked = o.chunkSize !== undefined && o.chunkSize > 0;
  for (let attempt = 0; ; attempt++) {
    try {
      o.onEvent?.({ type: 'start', digest: desc.digest, size: desc.size, offset: 0 });
      const { location } = await client.startUpload(repo, undefined, o.signal);
      const done = chunked ? await uploadChunked(client, repo, location!, desc, store, o.chunkSize ?? 8 << 20, o.signal) : await uploadMonolithic(client, repo, location!, desc, store, o.signal);
      if (done === 'fallback') {
        if (attempt + 1 >= attempts) throw new RegistryError('BLOB_UPLOAD', `${client.domain} rejected both monolithic and chunked uploads of ${desc.digest}`);
        chunked = !chunked;
        continue;
      }
      o.onEvent?.({ type: 'done', digest: desc.digest, size: desc.size });
      return;
    } catch (e) {
      await afterFailure(e, attempt, attempts, desc, o, (why) => new RegistryError('BLOB_UPLOAD', `uploading blob ${desc.digest} to ${client.domain}/${repo} failed after ${attempts} attempts (${why}); run the command again`, undefined, { cause: e }));
    }
  }
}

/**
 * Uploads bytes whose digest is known only at their end (a layer compressed as it goes out, as
 * skopeo does): the whole stream in one PATCH, then the PUT that names the digest. No retry here:
 * a failure is the caller's cue to compress first and upload with `pushBlob`'s retries.
 */
export async function pushStreamed(client: RegistryClient, repo: string, src: { stream: Readable; digest: Promise<Descriptor> }, signal?: AbortSignal): Promise<Descriptor> {
  let location: string | undefined;
  try {
    ({ location } = await client.startUpload(repo, undefined, signal));
  } catch (e) {
    src.stream.destroy();
    throw e;
  }
  let sent = false;
  const res = await client.request('PATCH', location!, {
    repo,
    actions: ['pull', 'push'],
    headers: { 'content-type': 'application/octet-stream' },
    // A stream goes once: a second send (an auth challenge) fails, and the caller falls back.
    body: () => {
      if (sent) throw new RegistryError('BLOB_UPLOAD', 'a streamed upload cannot be sent twice');
      sent = true;
      return src.stream;
    },
    signal,
  });
  if (res.status !== 202) {
    src.stream.destroy();
    return client.fail(res, `streamed upload to ${repo}`);
  }
  await res.body?.cancel().catch(() => undefined);
  const blob = await src.digest;
  const put = await client.request('PUT', withDigest(client.absolute(res), blob.digest), { repo, actions: ['pull', 'push'], headers: { 'content-length': '0' }, signal });
  if (put.status !== 201) return client.fail(put, `blob ${blob.digest} upload to ${repo}`);
  await put.body?.cancel().catch(() => undefined);
  return blob;
}

function withDigest(location: string, digest: string): string {
  const u = new URL(location);
  u.searchParams.set('digest', digest);
  return u.toString();
}

/**
 * The blob's bytes (or start..end, inclusive) as a Node stream, which the transport sends with
 * backpressure. A whole blob is verified as it goes out: a damaged one is never shipped.
 */
function fileBody(store: ContentStore, digest: string, start?: number, end?: number): () => Readable {
  return () => store.openBlob(digest, start !== undefined && end !== undefined ? { start, end } : undefined);
}

async function uploadMonolithic(client: RegistryClient, repo: string, location: string, desc: Descriptor, store: ContentStore, signal?: AbortSignal): Promise<'ok' | 'fallback'> {
  const res = await client.request('PUT', withDigest(location, desc.digest), {
    repo,
    actions: ['pull', 'push'],
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
    body: fileBody(store, desc.digest),
    signal,
  });
  if (res.status === 201) {
    await res.body?.cancel().catch(() => undefined);
    return 'ok';
  }
  if (res.status === 405 || res.status === 413 || res.status === 501) {
    await res.body?.cancel().catch(() => undefined);
    return 'fallback';
  }
  return client.fail(res, `blob ${desc.digest} upload to ${repo}`);
}

async function uploadChunked(client: RegistryClient, repo: string, location: string, desc: Descriptor, store: ContentStore, chunkSize: number, signal?: AbortSignal): Promise<'ok' | 'fallback'> {
  let loc = location;
  for (let off = 0; off < desc.size; off += chunkSize) {
    const end = Math.min(desc.size, off + chunkSize) - 1;
    const res = await client.request('PATCH', loc, {
      repo,
      actions: ['pull', 'push'],
      headers: { 'content-type': 'application/octet-stream', 'content-range': `${off}-${end}`, 'content-length': String(end - off + 1) },
      body: fileBody(store, desc.digest, off, end),
      signal,
    });
    if (res.status === 405 || res.status === 416 || res.status === 400 || res.status === 501) {
      await res.body?.cancel().catch(() => undefined);
      return 'fallback';
    }
    if (res.status !== 202) return client.fail(res, `blob ${desc.digest} chunk upload to ${repo}`);
    await res.body?.cancel().catch(() => undefined);
    loc = client.absolute(res);
  }
  const res = await client.request('PUT', withDigest(loc, desc.digest), { repo, actions: ['pull', 'push'], headers: { 'content-length': '0' }, signal });
  if (res.status !== 201) return client.fail(res, `blob ${desc.digest} upload to ${repo}`);
  await res.body?.cancel().catch(() => undefined);
  return 'ok';
}
