/**
 * Blob downloads through node:http (`streamResponse`): the body is the socket's own stream, decoded
 * when a server compressed it anyway, and the transport's middleware (redirects, retries) keeps
 * working on the Response around it.
 */
import http from 'node:http';
import zlib from 'node:zlib';
import crypto from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chain, followRedirects, kyHandler, nodeBody, retry, type RegistryRequest } from './transport.js';

const blob = crypto.randomBytes(300_000);

async function serve(fn: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<{ url: string; seen: http.IncomingHttpHeaders[]; close: () => Promise<void> }> {
  const seen: http.IncomingHttpHeaders[] = [];
  const server = http.createServer((req, res) => {
    seen.push(req.headers);
    fn(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, seen, close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))) };
}

async function readAll(s: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c);
  return Buffer.concat(parts);
}

const send = chain([retry({ attempts: 2, baseMs: 1 }), followRedirects], kyHandler(5_000));
const get = (url: string, headers: Record<string, string> = {}): RegistryRequest => ({ method: 'GET', url, headers, scopes: [], streamResponse: true });

test('the body arrives whole as a Node stream, with identity asked for; a compressed one is decoded', async () => {
  const s = await serve((req, res) => {
    if (req.url === '/gzip') return res.writeHead(200, { 'content-encoding': 'gzip' }).end(zlib.gzipSync(blob));
    if (req.url === '/br') return res.writeHead(200, { 'content-encoding': 'br' }).end(zlib.brotliCompressSync(blob));
    if (req.url === '/odd') return res.writeHead(200, { 'content-encoding': 'lzma' }).end('x');
    res.writeHead(200, { 'content-length': String(blob.length) }).end(blob);
  });
  try {
    for (const p of ['/plain', '/gzip', '/br']) {
      const res = await send(get(s.url + p));
      assert.is(res.status, 200);
      const body = nodeBody(res);
      assert.ok(body, `${p}: a Node stream`);
      assert.ok((await readAll(body!)).equals(blob), `${p}: every byte, the first chunk too`);
    }
    assert.is(s.seen[0]!['accept-encoding'], 'identity');
    await send(get(s.url + '/odd')).then(
      () => assert.unreachable('an encoding tsbuild cannot decode'),
      (e: Error) => assert.match(e.message, /Content-Encoding "lzma"/),
    );
  } finally {
    await s.close();
  }
});

test('redirects to another host drop Authorization; a 5xx is retried; an error body is still readable as text', async () => {
  const cdn = await serve((_req, res) => res.writeHead(200).end(blob));
  let calls = 0;
  const reg = await serve((req, res) => {
    if (req.url === '/flaky' && calls++ === 0) return res.writeHead(503).end('busy '.repeat(10_000));
    if (req.url === '/missing') return res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"BLOB_UNKNOWN"}]}');
    if (req.url === '/flaky') return res.writeHead(200).end(blob);
    res.writeHead(307, { location: `${cdn.url}/blob?sig=s` }).end();
  });
  try {
    const res = await send(get(reg.url + '/v2/x/blobs/sha256:1', { authorization: 'Bearer T' }));
    assert.ok((await readAll(nodeBody(res)!)).equals(blob));
    assert.is(reg.seen[0]!.authorization, 'Bearer T');
    assert.is(cdn.seen[0]!.authorization, undefined, 'no credentials to the other host');
    const again = await send(get(reg.url + '/flaky'));
    assert.is(again.status, 200);
    assert.ok((await readAll(nodeBody(again)!)).equals(blob), 'the retried answer, not the cancelled one');
    const missing = await send(get(reg.url + '/missing'));
    assert.is(missing.status, 404);
    assert.match(await missing.text(), /BLOB_UNKNOWN/);
  } finally {
    await reg.close();
    await cdn.close();
  }
});

test('a request without streamResponse keeps the fetch path (no Node stream)', async () => {
  const s = await serve((_req, res) => res.writeHead(200).end('ok'));
  try {
    const res = await send({ method: 'GET', url: s.url, headers: {}, scopes: [] });
    assert.is(nodeBody(res), undefined);
    assert.is(await res.text(), 'ok');
  } finally {
    await s.close();
  }
});

test.run();
