/**
 * HTTPS with a private certificate authority: a registry on 127.0.0.1 serving TLS with a certificate
 * from a throwaway authority that only NODE_EXTRA_CA_CERTS names. bin/tsbuild defers that variable
 * to the first HTTPS request (src/fsutil/tlstrust.ts); these tests check that the trust is the same
 * as Node's own handling of it: pushes, pulls and ADD of a URL work with it and fail without it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { cli, makeTestCA, registryUnavailable, startRegistry, tmpdir, type TestRegistry } from '../testutil/index.js';
import { registryFixture } from './registry.fixture.js';

const { it, root, ctx, env, newStore, buildHello } = registryFixture('tls');
const dir = tmpdir('tsb-tls-ca-');
const state: { reg?: TestRegistry; ca?: string } = {};
test.before(async () => {
  if (registryUnavailable() || process.env.TSBUILD_SKIP_SANDBOX) return;
  const ca = makeTestCA(dir);
  state.ca = ca.ca;
  state.reg = await startRegistry(undefined, { tls: ca });
});
test.after(async () => {
  await state.reg?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});
const host = () => state.reg!.host;
const trusting = () => ({ ...env, NODE_EXTRA_CA_CERTS: state.ca! });

it('with the authority in NODE_EXTRA_CA_CERTS, a push, a pull into an empty store and a run go over HTTPS', async () => {
  await buildHello('overtls');
  const ref = `${host()}/tests/overtls:v1`;
  const push = await cli(['push', 'overtls', ref], { root, env: trusting() });
  assert.is(push.code, 0, push.stderr);
  const s = newStore();
  const pull = await cli(['pull', ref], { root: s, env: trusting() });
  assert.is(pull.code, 0, pull.stderr);
  const run = await cli(['run', '--rm', '--pull', 'never', ref], { root: s, env: trusting() });
  assert.is(run.code, 0, run.stderr);
  assert.is(run.stdout, 'hello overtls\n');
});

it('without the authority, the push fails and says the certificate is not trusted', async () => {
  await buildHello('untrusted');
  const push = await cli(['push', 'untrusted', `${host()}/tests/untrusted:v1`], { root, env: { ...env, NODE_EXTRA_CA_CERTS: '' } });
  assert.is(push.code, 1, push.stdout);
  assert.match(push.stderr, `cannot reach registry ${host()}: its TLS certificate is not trusted: UNABLE_TO_VERIFY_LEAF_SIGNATURE`, push.stderr);
  assert.match(push.stderr, /name it in NODE_EXTRA_CA_CERTS/);
});

it('ADD of an https URL trusts the same authority', async () => {
  const d = ctx(`ADD https://${host()}/v2/ /v2.json\nCMD ["cat", "/v2.json"]\n`);
  const b = await cli(['-q', '-t', 'addtls', d], { root, env: trusting() });
  assert.is(b.code, 0, b.stderr);
  const run = await cli(['run', '--rm', 'addtls'], { root, env });
  assert.is(run.code, 0, run.stderr);
  assert.is(run.stdout.trim(), '{}', 'the registry answers GET /v2/ with an empty JSON object');
  const without = await cli(['-q', '-t', 'addtls2', '--no-cache', d], { root, env: { ...env, NODE_EXTRA_CA_CERTS: '' } });
  assert.is(without.code, 1);
  assert.match(without.stderr, /certificate/i);
});

it('the file is read only when a command opens a TLS connection, and a bad one is reported there, as Node would', async () => {
  const missing = path.join(dir, 'missing.pem');
  const ls = await cli(['images'], { root, env: { ...env, NODE_EXTRA_CA_CERTS: missing } });
  assert.is(ls.code, 0, ls.stderr);
  assert.not.match(ls.stderr, /extra certs/, 'Node did not read it at start-up');
  const push = await cli(['push', 'overtls', `${host()}/tests/overtls:v2`], { root, env: { ...env, NODE_EXTRA_CA_CERTS: missing } });
  assert.is(push.code, 1);
  assert.match(push.stderr, `Warning: Ignoring extra certs from \`${missing}\` (NODE_EXTRA_CA_CERTS), load failed: ENOENT`);
  assert.match(push.stderr, /its TLS certificate is not trusted/, push.stderr);
});

test.run();
