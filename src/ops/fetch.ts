/**
 * ADD of URLs: the body is streamed to a temp file while hashed; `--checksum` is checked before the file
 * is used. Errors say what failed and what to do.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { TsbuildError } from '../errors/index.js';
import { applyDeferredTrust } from '../fsutil/index.js';
import type { BuildSecrets } from './types.js';

export class FetchError extends TsbuildError {
  constructor(message: string) {
    super('ADD_URL_FAILED', message);
  }
}

export interface Fetched {
  file: string;
  name: string;
  mtime?: Date;
  digest: string;
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password || u.username) {
      u.username = '***';
      u.password = '';
    }
    return u.toString();
  } catch {
    return url;
  }
}

/**
 * BuildKit's auth for ADD URLs: the build secret `HTTP_AUTH_HEADER_<host>` is sent as the
 * Authorization header, `HTTP_AUTH_TOKEN_<host>` as `Bearer <token>`. Only to that host.
 */
export function authHeaders(url: string, secrets: BuildSecrets | undefined): Record<string, string> {
  if (!secrets) return {};
  const host = new URL(url).hostname;
  const read = (id: string): string | undefined => {
    const s = secrets.secrets.get(id);
    if (!s) return undefined;
    if (s.file !== undefined) return fs.readFileSync(s.file, 'utf8').trim();
    return s.env !== undefined ? process.env[s.env] : undefined;
  };
  const header = read(`HTTP_AUTH_HEADER_${host}`);
  if (header !== undefined) return { authorization: header };
  const token = read(`HTTP_AUTH_TOKEN_${host}`);
  return token !== undefined ? { authorization: `Bearer ${token}` } : {};
}

function checkFormat(checksum: string | undefined): void {
  if (checksum !== undefined && !/^sha256:[a-f0-9]{64}$/.test(checksum)) {
    throw new FetchError(`--checksum=${checksum}: expected sha256:<64 hex digits>`);
  }
}

export async function fetchURL(url: string, dir: string, checksum: string | undefined, signal: AbortSignal, headers: Record<string, string> = {}): Promise<Fetched> {
  checkFormat(checksum);
  let res: Response;
  // Loaded when a build first downloads: most commands never need an HTTP client.
  const { default: ky, HTTPError } = await import('ky');
  await applyDeferredTrust();
  try {
    res = await ky.get(url, { signal, timeout: 60_000, retry: { limit: 2 }, throwHttpErrors: true, headers });
  } catch (e) {
    if (e instanceof HTTPError) {
      const hint = e.response.status === 401 || e.response.status === 403 ? `; for a private URL pass --secret id=HTTP_AUTH_TOKEN_${new URL(url).hostname},env=VAR (or HTTP_AUTH_HEADER_<host>)` : '';
      throw new FetchError(`ADD ${redact(url)}: the server answered ${e.response.status} ${e.response.statusText}${hint}`);
    }
    const cause = e instanceof Error ? ((e.cause as Error | undefined)?.message ?? e.message) : String(e);
    throw new FetchError(`ADD ${redact(url)}: cannot download it (${cause}); check the URL and that the host is reachable from this machine`);
  }
  const name = decodeURIComponent(path.posix.basename(new URL(url).pathname)) || 'index.html';
  const file = path.join(dir, `download-${crypto.randomBytes(6).toString('hex')}`);
  const hash = crypto.createHash('sha256');
  if (!res.body) throw new FetchError(`ADD ${redact(url)}: empty response`);
  const body = Readable.fromWeb(res.body as unknown as import('node:stream/web').ReadableStream<Uint8Array>);
  body.on('data', (c: Buffer) => hash.update(c));
  await pipeline(body, fs.createWriteStream(file, { mode: 0o600 }));
  const digest = 'sha256:' + hash.digest('hex');
  if (checksum !== undefined && checksum !== digest) {
    fs.rmSync(file, { force: true });
    throw new FetchError(`ADD ${redact(url)}: checksum mismatch: expected ${checksum}, got ${digest}`);
  }
  const lm = res.headers.get('last-modified');
  const mtime = lm ? new Date(lm) : undefined;
  return { file, name, mtime: mtime && !isNaN(mtime.getTime()) ? mtime : undefined, digest };
}

/**
 * The downloads of one build, by URL. An ADD of a URL without --checksum is keyed by the content, so
 * computing its cache key downloads it; on a miss the step then uses that same file instead of
 * downloading it a second time. Files live in `dir` until `dispose`.
 */
export class Downloads {
  private byUrl = new Map<string, Promise<Fetched>>();
  constructor(private dir: string, private secrets?: BuildSecrets) {}

  async get(url: string, checksum: string | undefined, signal: AbortSignal): Promise<Fetched> {
    checkFormat(checksum);
    let p = this.byUrl.get(url);
    if (!p) {
      fs.mkdirSync(this.dir, { recursive: true });
      p = fetchURL(url, this.dir, undefined, signal, authHeaders(url, this.secrets));
      this.byUrl.set(url, p);
      // A failed or cancelled download is not remembered: the next use tries again.
      p.catch(() => this.byUrl.delete(url));
    }
    const got = await p;
    if (checksum !== undefined && checksum !== got.digest) throw new FetchError(`ADD ${redact(url)}: checksum mismatch: expected ${checksum}, got ${got.digest}`);
    return got;
  }

  /** How many URLs were downloaded (for tests). */
  get count(): number {
    return this.byUrl.size;
  }

  dispose(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
