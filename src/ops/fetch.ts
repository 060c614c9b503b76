/**
 * ADD of URLs: the body is streamed to a temp file while hashed; `--checksum` is checked before the file
 * is used. Errors say what failed and what to do.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import ky, { HTTPError } from 'ky';
import { TsbuildError } from '../errors/index.js';

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

export async function fetchURL(url: string, dir: string, checksum: string | undefined, signal: AbortSignal): Promise<Fetched> {
  if (checksum !== undefined && !/^sha256:[a-f0-9]{64}$/.test(checksum)) {
    throw new FetchError(`--checksum=${checksum}: expected sha256:<64 hex digits>`);
  }
  let res: Response;
  try {
    res = await ky.get(url, { signal, timeout: 60_000, retry: { limit: 2 }, throwHttpErrors: true });
  } catch (e) {
    if (e instanceof HTTPError) throw new FetchError(`ADD ${redact(url)}: the server answered ${e.response.status} ${e.response.statusText}`);
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
