/**
 * One HTTP exchange through node:http(s) rather than fetch: a streamed upload (a blob body going out),
 * or a download whose body is read as the socket's own Node stream (`nodeBody`).
 */
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { CancelledError } from '../errors/index.js';
import { RegistryError, redactURL } from './httperror.js';
import type { RegistryRequest } from './transport.js';

const NULL_BODY = new Set([101, 103, 204, 205, 304]);
const NODE_BODY = Symbol('tsbuild.nodeBody');

/**
 * A response's body as the Node stream it came from, for a request made with `streamResponse`: the
 * socket's own buffers, where fetch's body copies every chunk into a new Uint8Array on its way
 * through a web stream (a 512 MiB blob: 0.2-0.4 s more CPU, and 512 MB more of new buffers, a full
 * GC per 64 MB of them). Undefined for any other response. Its `body` stays usable (an error's
 * text, a cancel after a redirect) until this stream is taken.
 */
export function nodeBody(res: Response): Readable | undefined {
  return (res as Response & { [NODE_BODY]?: Readable })[NODE_BODY];
}

const DECODERS: Record<string, () => import('node:stream').Transform> = {
  gzip: () => zlib.createGunzip(),
  'x-gzip': () => zlib.createGunzip(),
  deflate: () => zlib.createInflate(),
  br: () => zlib.createBrotliDecompress(),
};

/** One exchange through node:http(s): a streamed upload (`body`), or a download read as a Node stream. */
export async function streamingRequest(r: RegistryRequest, body: Readable | undefined, idleMs: number): Promise<Response> {
  const u = new URL(r.url);
  const mod = u.protocol === 'https:' ? await import('node:https') : await import('node:http');
  // fetch asks for compressed transfers and decodes them; a download here asks for the bytes as they are.
  const headers = body ? r.headers : { 'accept-encoding': 'identity', ...r.headers };
  return new Promise<Response>((resolve, reject) => {
    const req = mod.request(u, { method: r.method, headers, signal: r.signal }, (res) => {
      const h = new Headers();
      for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) for (const x of Array.isArray(v) ? v : [v]) h.append(k, x);
      const status = res.statusCode ?? 500;
      const encoding = (res.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
      let stream: Readable = res;
      if (!body && encoding !== 'identity' && !NULL_BODY.has(status)) {
        const decoder = DECODERS[encoding];
        if (!decoder) {
          res.destroy();
          reject(new RegistryError('REGISTRY_ERROR', `${redactURL(r.url)} sent its body with Content-Encoding "${encoding}", which tsbuild cannot decode`, status));
          return;
        }
        stream = res.pipe(decoder());
        res.on('error', (e) => stream.destroy(e));
        h.delete('content-encoding');
        h.delete('content-length');
      }
      let it: AsyncIterator<Buffer> | undefined;
      const web = NULL_BODY.has(status)
        ? null
        : body
          ? (Readable.toWeb(stream) as unknown as ReadableStream)
          : new ReadableStream<Uint8Array>({
              async pull(c) {
                it ??= stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
                const n = await it.next();
                if (n.done) c.close();
                else c.enqueue(n.value);
              },
              cancel() {
                stream.destroy();
              },
              // Nothing read ahead: a stream pulls its first chunk at once unless told not to, and
              // that chunk would be missing from the Node stream taken by nodeBody.
            }, { highWaterMark: 0 });
      const out = new Response(web, { status, statusText: res.statusMessage, headers: h });
      if (NULL_BODY.has(status)) res.resume();
      // Location headers are resolved against the request's URL, as fetch's Response.url gives it.
      Object.defineProperty(out, 'url', { value: r.url });
      if (!body && web) Object.defineProperty(out, NODE_BODY, { value: stream });
      resolve(out);
    });
    req.setTimeout(idleMs, () => req.destroy(new RegistryError('REGISTRY_TIMEOUT', `no progress for ${idleMs / 1000} s ${body ? 'sending to' : 'receiving from'} ${redactURL(r.url)}`)));
    req.on('error', (e) => {
      body?.destroy();
      reject(r.signal?.aborted ? new CancelledError() : e);
    });
    if (body) {
      body.on('error', (e) => req.destroy(e));
      body.pipe(req);
    } else req.end();
  });
}

