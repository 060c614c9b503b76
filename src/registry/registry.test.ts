import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseReference, formatReference, familiarName, ReferenceError } from './reference.js';
import { parseChallenge, chain, followRedirects, retry, Authenticator, type Handler, type RegistryRequest } from './transport.js';
import { selectManifest } from './media.js';
import { isLoopbackHost, RegistryClient } from './client.js';

const normalised: [string, string, string][] = [
  ['alpine', 'docker.io/library/alpine:latest', 'alpine:latest'],
  ['alpine:3.19', 'docker.io/library/alpine:3.19', 'alpine:3.19'],
  ['library/alpine', 'docker.io/library/alpine:latest', 'alpine:latest'],
  ['docker.io/alpine', 'docker.io/library/alpine:latest', 'alpine:latest'],
  ['index.docker.io/library/alpine:1', 'docker.io/library/alpine:1', 'alpine:1'],
  ['me/app', 'docker.io/me/app:latest', 'me/app:latest'],
  ['localhost/app', 'localhost/app:latest', 'localhost/app:latest'],
  ['localhost:5000/a/b/c:v1.2', 'localhost:5000/a/b/c:v1.2', 'localhost:5000/a/b/c:v1.2'],
  ['ghcr.io/o/r', 'ghcr.io/o/r:latest', 'ghcr.io/o/r:latest'],
  ['127.0.0.1:5000/x', '127.0.0.1:5000/x:latest', '127.0.0.1:5000/x:latest'],
  ['Registry.Example.com/x', 'Registry.Example.com/x:latest', 'Registry.Example.com/x:latest'],
  [`x@sha256:${'a'.repeat(64)}`, `docker.io/library/x@sha256:${'a'.repeat(64)}`, `x@sha256:${'a'.repeat(64)}`],
  [`host:1/x:tag@sha256:${'b'.repeat(64)}`, `host:1/x@sha256:${'b'.repeat(64)}`, `host:1/x@sha256:${'b'.repeat(64)}`],
  ['a__b/c-d--e.f_g', 'docker.io/a__b/c-d--e.f_g:latest', 'a__b/c-d--e.f_g:latest'],
];

test('references normalise as Docker does (canonical and familiar forms)', () => {
  for (const [input, canonical, familiar] of normalised) {
    const r = parseReference(input);
    assert.is(formatReference(r), canonical, input);
    assert.is(familiarName(r), familiar, input);
  }
  const both = parseReference(`host:1/x:tag@sha256:${'b'.repeat(64)}`);
  assert.is(both.tag, 'tag', 'the tag is kept next to the digest');
});

const rejected: [string, RegExp][] = [
  ['', /empty/],
  ['Alpine', /lowercase/],
  ['docker.io/Me/app', /lowercase/],
  ['x:-bad', /tag/],
  ['x@sha256:abc', /digest/],
  ['x@md5', /digest/],
  ['a//b', /name component/],
  ['a/-b', /name component/],
  ['host:port/x', /registry host|tag/],
  [`${'a'.repeat(64)}`, /image id/],
  ['x:' + 't'.repeat(129), /tag/],
  [`h/${'a'.repeat(260)}`, /255/],
];

test('invalid references are rejected with the reason', () => {
  for (const [input, why] of rejected) {
    try {
      parseReference(input);
      assert.unreachable(`accepted ${JSON.stringify(input)}`);
    } catch (e) {
      assert.instance(e, ReferenceError, input);
      assert.match((e as Error).message, why, input);
      assert.is((e as ReferenceError).code, 'INVALID_REFERENCE');
    }
  }
});

test('WWW-Authenticate challenges parse (quoted, unquoted, escaped, several scopes)', () => {
  const c = parseChallenge('Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push repository:c:pull"');
  assert.equal(c, { scheme: 'bearer', params: { realm: 'https://auth.example.com/token', service: 'registry.example.com', scope: 'repository:a/b:pull,push repository:c:pull' } });
  assert.equal(parseChallenge('Basic realm="x \\"y\\""'), { scheme: 'basic', params: { realm: 'x "y"' } });
  assert.equal(parseChallenge('bearer realm=http://h/t, service=s'), { scheme: 'bearer', params: { realm: 'http://h/t', service: 's' } });
  assert.is(parseChallenge('Negotiate abc'), undefined);
  assert.is(parseChallenge(null), undefined);
});

test('platform selection from an index (variants, arm64 v8 implied)', () => {
  const d = (architecture: string, variant?: string) => ({ mediaType: 'm', digest: `sha256:${architecture}${variant ?? ''}`, size: 1, platform: { os: 'linux', architecture, ...(variant ? { variant } : {}) } });
  const list = [d('arm', 'v6'), d('arm', 'v7'), d('arm64'), d('amd64'), { ...d('amd64'), platform: { os: 'windows', architecture: 'amd64' }, digest: 'sha256:win' }];
  assert.is(selectManifest(list, { os: 'linux', architecture: 'amd64' })?.digest, 'sha256:amd64');
  assert.is(selectManifest(list, { os: 'linux', architecture: 'arm', variant: 'v7' })?.digest, 'sha256:armv7');
  assert.is(selectManifest(list, { os: 'linux', architecture: 'arm64', variant: 'v8' })?.digest, 'sha256:arm64');
  assert.is(selectManifest(list, { os: 'linux', architecture: 's390x' }), undefined);
  assert.is(selectManifest(list, { os: 'windows', architecture: 'amd64' })?.digest, 'sha256:win');
});

test('loopback hosts are insecure by default, others are not', () => {
  for (const h of ['localhost', 'localhost:5000', '127.0.0.1:5000', '127.1.2.3', '[::1]:5000']) assert.ok(isLoopbackHost(h), h);
  for (const h of ['registry.example.com', '10.0.0.1:5000', 'localhost.example.com']) assert.not.ok(isLoopbackHost(h), h);
});

/** A scripted server: each request is answered by `fn`, and recorded. */
function fake(fn: (r: RegistryRequest, n: number) => Response | Promise<Response>): { handler: Handler; seen: RegistryRequest[] } {
  const seen: RegistryRequest[] = [];
  return {
    seen,
    handler: async (r) => {
      seen.push(r);
      return fn(r, seen.length);
    },
  };
}

test('redirects are followed and Authorization never reaches another host', async () => {
  const f = fake((r) => {
    if (r.url.startsWith('https://reg.example/')) return new Response(null, { status: 307, headers: { location: 'https://cdn.example/blob?sig=secret' } });
    return new Response('data', { status: 200 });
  });
  const h = chain([followRedirects], f.handler);
  const res = await h({ method: 'GET', url: 'https://reg.example/v2/x/blobs/sha256:1', headers: { authorization: 'Bearer T' }, scopes: [] });
  assert.is(await res.text(), 'data');
  assert.is(f.seen[0]!.headers['authorization'], 'Bearer T');
  assert.is(f.seen[1]!.url, 'https://cdn.example/blob?sig=secret');
  assert.is(f.seen[1]!.headers['authorization'], undefined, 'no credentials to the other host');
  const same = fake((r, n) => (n === 1 ? new Response(null, { status: 302, headers: { location: '/v2/y' } }) : new Response(r.headers['authorization'] ?? 'none')));
  const res2 = await chain([followRedirects], same.handler)({ method: 'GET', url: 'https://reg.example/v2/x', headers: { authorization: 'Basic A' }, scopes: [] });
  assert.is(await res2.text(), 'Basic A', 'kept on a same-host redirect');
  const loop = fake(() => new Response(null, { status: 302, headers: { location: '/again' } }));
  await chain([followRedirects], loop.handler)({ method: 'GET', url: 'https://reg.example/', headers: {}, scopes: [] }).then(
    () => assert.unreachable('a redirect loop must fail'),
    (e: Error) => assert.match(e.message, /too many redirects/),
  );
});

test('tags/list: pages followed by their Link header, merged and sorted; an endless pager is cut off', async () => {
  const f = fake((r) => {
    if (r.url.endsWith('/v2/')) return new Response('{}', { status: 200 });
    if (r.url.includes('last=b')) return new Response(JSON.stringify({ name: 'a/b', tags: ['c', 'a'] }));
    return new Response(JSON.stringify({ name: 'a/b', tags: ['b', 'a'] }), { headers: { link: '</v2/a/b/tags/list?last=b&n=1000>; rel="next"' } });
  });
  assert.equal(await new RegistryClient({ domain: 'reg.example', base: f.handler }).listTags('a/b'), ['a', 'b', 'c']);
  const endless = fake((r) => (r.url.endsWith('/v2/') ? new Response('{}') : new Response('{"tags":["x"]}', { headers: { link: '</v2/a/b/tags/list?again=1>; rel="next"' } })));
  assert.equal(await new RegistryClient({ domain: 'reg.example', base: endless.handler }).listTags('a/b'), ['x']);
  assert.ok(endless.seen.length <= 102, `stopped after 100 pages (${endless.seen.length} requests)`);
  const none = fake((r) => (r.url.endsWith('/v2/') ? new Response('{}') : new Response('{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}', { status: 404 })));
  await new RegistryClient({ domain: 'reg.example', base: none.handler }).listTags('a/nope').then(
    () => assert.unreachable(),
    (e: Error & { code: string }) => assert.is(e.code, 'NAME_UNKNOWN'),
  );
});

test('retry: 5xx then success; resets are retried; 4xx are not; bodies are rebuilt per attempt', async () => {
  let bodies = 0;
  const f = fake((_r, n) => (n < 3 ? new Response('', { status: n === 1 ? 500 : 503 }) : new Response('ok')));
  const retries: string[] = [];
  const h = chain([retry({ attempts: 4, baseMs: 1, onRetry: (_w, _a, why) => retries.push(why) })], f.handler);
  const res = await h({ method: 'PUT', url: 'https://r/x', headers: {}, body: () => `b${++bodies}`, scopes: [] });
  assert.is(await res.text(), 'ok');
  assert.equal(retries, ['HTTP 500', 'HTTP 503']);
  const reset = fake((_r, n) => {
    if (n === 1) throw Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNRESET' } });
    return new Response('ok');
  });
  assert.is(await (await chain([retry({ attempts: 2, baseMs: 1 })], reset.handler)({ method: 'GET', url: 'https://r/', headers: {}, scopes: [] })).text(), 'ok');
  const tls = fake(() => {
    throw Object.assign(new TypeError('fetch failed'), { cause: { code: 'ERR_SSL_WRONG_VERSION_NUMBER' } });
  });
  await chain([retry({ attempts: 3, baseMs: 1 })], tls.handler)({ method: 'GET', url: 'https://r/', headers: {}, scopes: [] }).catch(() => undefined);
  assert.is(tls.seen.length, 1, 'TLS failures are not retried');
  const notFound = fake(() => new Response('', { status: 404 }));
  await chain([retry({ attempts: 3, baseMs: 1 })], notFound.handler)({ method: 'GET', url: 'https://r/', headers: {}, scopes: [] });
  assert.is(notFound.seen.length, 1);
  const giveUp = fake(() => new Response('', { status: 502 }));
  const last = await chain([retry({ attempts: 2, baseMs: 1 })], giveUp.handler)({ method: 'GET', url: 'https://r/', headers: {}, scopes: [] });
  assert.is(last.status, 502, 'after the last attempt the answer is returned for the caller to report');
  assert.is(giveUp.seen.length, 3);
});

function tokenServer(opts: { ttl: number }) {
  let issued = 0;
  const tokenReqs: string[] = [];
  const f = fake((r) => {
    const u = new URL(r.url);
    if (u.host === 'auth.example') {
      tokenReqs.push(u.searchParams.getAll('scope').join(' ') + `|${r.headers['authorization'] ?? 'anon'}`);
      issued++;
      return Response.json({ token: `t${issued}`, expires_in: opts.ttl });
    }
    const auth = r.headers['authorization'];
    if (!auth || auth === 'Bearer t-revoked') {
      return new Response('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}', {
        status: 401,
        headers: { 'www-authenticate': 'Bearer realm="https://auth.example/token",service="reg.example"' },
      });
    }
    return new Response(auth);
  });
  return { f, tokenReqs, revoke: () => undefined };
}

test('bearer tokens: challenge, scoped token with Basic credentials, reuse, refresh on expiry, new scopes', async () => {
  let now = 1_000_000;
  const t = tokenServer({ ttl: 60 });
  const auth = new Authenticator({ domain: 'reg.example', credentials: async () => ({ username: 'u', password: 'p' }), fetch: t.f.handler, now: () => now });
  const h = chain([auth.middleware], t.f.handler);
  const req = (scopes: string[]): RegistryRequest => ({ method: 'GET', url: 'https://reg.example/v2/a/manifests/1', headers: {}, scopes });
  assert.is(await (await h(req(['repository:a:pull']))).text(), 'Bearer t1');
  assert.is(t.tokenReqs[0], `repository:a:pull|Basic ${Buffer.from('u:p').toString('base64')}`);
  const before = t.f.seen.length;
  assert.is(await (await h(req(['repository:a:pull']))).text(), 'Bearer t1', 'reused');
  assert.is(t.f.seen.length - before, 1, 'a known challenge means no 401 round trip');
  assert.is(await (await h(req(['repository:a:pull,push', 'repository:b:pull']))).text(), 'Bearer t2', 'more scopes, new token');
  assert.is(t.tokenReqs[1]!.split('|')[0], 'repository:a:pull,push repository:b:pull');
  now += 120_000;
  assert.is(await (await h(req(['repository:a:pull']))).text(), 'Bearer t3', 'refreshed after expiry');
  assert.is(t.tokenReqs.length, 3);
});

test('a 401 with a token the server stopped accepting gets one fresh token, then the error is returned', async () => {
  const tokens = ['t-revoked', 'good'];
  const f = fake((r) => {
    const u = new URL(r.url);
    if (u.host === 'auth.example') return Response.json({ token: tokens.shift(), expires_in: 300 });
    if (r.headers['authorization'] === 'Bearer good') return new Response('ok');
    return new Response('', { status: 401, headers: { 'www-authenticate': 'Bearer realm="https://auth.example/token"' } });
  });
  const auth = new Authenticator({ domain: 'reg.example', credentials: async () => undefined, fetch: f.handler });
  const h = chain([auth.middleware], f.handler);
  // First request: challenge, token t-revoked, refused again: the 401 is returned for the caller.
  const r1 = await h({ method: 'GET', url: 'https://reg.example/v2/', headers: {}, scopes: [] });
  assert.is(r1.status, 401);
  const r2 = await h({ method: 'GET', url: 'https://reg.example/v2/', headers: {}, scopes: [] });
  assert.is(await r2.text(), 'ok', 'the refused token was replaced');
});

test('basic auth challenge uses stored credentials; without them the 401 becomes an actionable error', async () => {
  const f = fake((r) => (r.headers['authorization'] === 'Basic ' + Buffer.from('u:p').toString('base64') ? new Response('{}') : new Response('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}', { status: 401, headers: { 'www-authenticate': 'Basic realm="r"' } })));
  const ok = new RegistryClient({ domain: 'reg.example', credentials: async () => ({ username: 'u', password: 'p' }), base: f.handler });
  const res = await ok.request('GET', '/v2/a/manifests/1', { repo: 'a' });
  assert.is(res.status, 200);
  const anon = new RegistryClient({ domain: 'reg.example', credentials: async () => undefined, base: f.handler });
  try {
    await anon.getManifest('a', '1', ['x']);
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /^401 unauthorized: reg\.example refused access to reg\.example\/a:1 \(UNAUTHORIZED: authentication required\); run tsbuild login reg\.example$/);
    assert.is((e as { code: string }).code, 'REGISTRY_UNAUTHORIZED');
  }
});

test('registry errors keep the registry\'s code and say what to do', async () => {
  const f = fake((r) => {
    if (r.url.endsWith('/v2/')) return new Response('{}');
    if (r.url.includes('/manifests/')) return new Response('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}', { status: 404 });
    return new Response('{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}', { status: 403 });
  });
  const c = new RegistryClient({ domain: 'reg.example', base: f.handler });
  await c.getManifest('a/b', 'v1', ['x']).then(
    () => assert.unreachable(),
    (e: Error & { code: string }) => {
      assert.is(e.code, 'MANIFEST_UNKNOWN');
      assert.match(e.message, 'manifest unknown: reg.example/a/b:v1 (MANIFEST_UNKNOWN: manifest unknown)');
    },
  );
  await c.blobSize('a/b', 'sha256:' + '0'.repeat(64)).then(
    () => assert.unreachable(),
    (e: Error & { code: string }) => {
      assert.is(e.code, 'REGISTRY_DENIED');
      assert.match(e.message, /DENIED: requested access/);
    },
  );
});

test('an unreachable registry names the host and suggests --insecure-registry for plain HTTP', async () => {
  const f = fake(() => {
    throw Object.assign(new TypeError('fetch failed'), { cause: { code: 'ERR_SSL_WRONG_VERSION_NUMBER', message: 'wrong version number' } });
  });
  const c = new RegistryClient({ domain: 'reg.example:5000', base: f.handler, retries: 0 });
  await c.endpoint().then(
    () => assert.unreachable(),
    (e: Error & { code: string }) => {
      assert.is(e.code, 'REGISTRY_UNREACHABLE');
      assert.match(e.message, 'cannot reach registry reg.example:5000');
      assert.match(e.message, '--insecure-registry reg.example:5000');
    },
  );
  const insecure = fake((r) => {
    if (r.url.startsWith('https:')) throw Object.assign(new TypeError('fetch failed'), { cause: { code: 'ERR_SSL_WRONG_VERSION_NUMBER' } });
    return new Response('{}');
  });
  const ci = new RegistryClient({ domain: 'reg.example:5000', base: insecure.handler, insecure: true });
  assert.is(await ci.endpoint(), 'http://reg.example:5000', 'insecure: falls back to plain HTTP');
});

test('blob sources: newest repository first, per registry, capped, forgotten with the blob', async () => {
  const { BlobSources } = await import('./sources.js');
  const { tmpdir } = await import('../testutil/index.js');
  const fs = await import('node:fs');
  const path = await import('node:path');
  const dir = tmpdir('tsb-sources-');
  try {
    const s = new BlobSources(path.join(dir, 'registry'));
    s.retain(() => false); // nothing recorded yet: no file, no error
    s.record('a.example', 'x/one', ['sha256:1', 'sha256:2']);
    s.record('a.example', 'x/two', ['sha256:1']);
    s.record('b.example', 'y', ['sha256:1']);
    assert.equal(s.lookup('a.example', 'sha256:1'), ['x/two', 'x/one']);
    assert.equal(s.lookup('b.example', 'sha256:1'), ['y']);
    for (let i = 0; i < 12; i++) s.record('a.example', `r${i}`, ['sha256:2']);
    assert.is(s.lookup('a.example', 'sha256:2').length, 8, 'capped');
    s.retain((d) => d === 'sha256:1');
    assert.equal(s.lookup('a.example', 'sha256:2'), []);
    assert.equal(s.lookup('a.example', 'sha256:1'), ['x/two', 'x/one']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
