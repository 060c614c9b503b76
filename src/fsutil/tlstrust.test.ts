/**
 * The deferred NODE_EXTRA_CA_CERTS: an HTTPS server with a certificate from a throwaway authority,
 * reached from a fresh Node process (the trust is process-wide and applied once) through fetch and
 * node:https, with the authority deferred, absent, or unreadable.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import type net from 'node:net';
import path from 'node:path';
import { makeTestCA, repoRoot, tmpdir } from '../testutil/index.js';
import { DEFERRED_CA_ENV, userEnv } from './index.js';

const dir = tmpdir('tsb-tlstrust-');
const ca = makeTestCA(dir);
const server = https.createServer({ cert: fs.readFileSync(ca.cert), key: fs.readFileSync(ca.key) }, (_req, res) => res.end('ok'));
let url = '';

test.before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `https://127.0.0.1:${(server.address() as net.AddressInfo).port}/`;
});
test.after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  fs.rmSync(dir, { recursive: true, force: true });
});

const probe = `
import https from 'node:https';
const { applyDeferredTrust } = await import(process.argv[1]);
await applyDeferredTrust();
const url = process.argv[2];
const f = await fetch(url).then((r) => 'fetch ' + r.status, (e) => 'fetch failed ' + (e.cause?.code ?? e.message));
const h = await new Promise((res) => https.get(url, (r) => { r.resume(); res('https ' + r.statusCode); }).on('error', (e) => res('https failed ' + e.code)));
console.log(f + '; ' + h);
`;

function run(deferred: string | undefined): Promise<{ out: string; err: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  delete env[DEFERRED_CA_ENV];
  if (deferred !== undefined) env[DEFERRED_CA_ENV] = deferred;
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['--input-type=module', '-e', probe, path.join(repoRoot, 'dist/fsutil/index.js'), url], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    c.on('error', reject);
    c.on('close', () => resolve({ out: out.trim(), err }));
  });
}

test('the deferred authority is trusted by fetch and node:https alike', async () => {
  const r = await run(ca.ca);
  assert.is(r.out, 'fetch 200; https 200', r.err);
  assert.is(r.err, '');
});

test('without it, the server is not trusted', async () => {
  const r = await run(undefined);
  assert.match(r.out, /^fetch failed (SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY); https failed \1$/, r.err);
});

test('an unreadable file is reported, as Node reports it at start-up, and nothing more is trusted', async () => {
  const missing = path.join(dir, 'missing.pem');
  const r = await run(missing);
  assert.match(r.err, `Warning: Ignoring extra certs from \`${missing}\` (NODE_EXTRA_CA_CERTS), load failed: ENOENT`);
  assert.match(r.out, /^fetch failed \w+; https failed \w+$/);
  assert.not.match(r.out, /200/);
});

test('a program that is not tsbuild gets NODE_EXTRA_CA_CERTS back', () => {
  const saved = process.env[DEFERRED_CA_ENV];
  try {
    process.env[DEFERRED_CA_ENV] = '/etc/some-ca.pem';
    const env = userEnv();
    assert.is(env.NODE_EXTRA_CA_CERTS, '/etc/some-ca.pem');
    assert.is(env[DEFERRED_CA_ENV], undefined);
    delete process.env[DEFERRED_CA_ENV];
    assert.is(userEnv(), process.env, 'nothing deferred: the environment as it is');
  } finally {
    if (saved === undefined) delete process.env[DEFERRED_CA_ENV];
    else process.env[DEFERRED_CA_ENV] = saved;
  }
});

test.run();
