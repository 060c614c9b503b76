/** One suite for every credential source: config.json `auths` and a credential-helper program. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { tmpdir } from '../testutil/index.js';
import { ConfigFileSource, HelperSource, lookupCredentials, sourceFor, type CredentialSource } from './credentials.js';

const base = tmpdir('tsb-creds-');
const bin = path.join(base, 'bin');
fs.mkdirSync(bin);
// A credential helper speaking Docker's protocol, storing one JSON file per server URL.
fs.writeFileSync(
  path.join(bin, 'docker-credential-testhelper'),
  `#!/bin/sh
set -e
store="${base}/helper-store"
mkdir -p "$store"
input=$(cat)
case "$1" in
  get) f="$store/$(printf %s "$input" | base64 -w0 | tr '/+' '_-')"; if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  store) url=$(printf %s "$input" | sed -n 's/.*"ServerURL":"\\([^"]*\\)".*/\\1/p'); printf %s "$input" > "$store/$(printf %s "$url" | base64 -w0 | tr '/+' '_-')" ;;
  erase) f="$store/$(printf %s "$input" | base64 -w0 | tr '/+' '_-')"; if [ -f "$f" ]; then rm "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
esac
`,
  { mode: 0o755 },
);
process.env.PATH = `${bin}:${process.env.PATH}`;

function suite(name: string, make: () => CredentialSource) {
  test(`${name}: store, get, erase; unknown registries are anonymous`, async () => {
    const s = make();
    assert.is(await s.get('reg.example:5000'), undefined);
    await s.store('reg.example:5000', { username: 'alice', password: 'p:a:ss' });
    assert.equal(await s.get('reg.example:5000'), { username: 'alice', password: 'p:a:ss' });
    assert.is(await s.get('other.example'), undefined);
    await s.store('reg.example:5000', { username: 'bob', password: 'x' });
    assert.equal(await s.get('reg.example:5000'), { username: 'bob', password: 'x' }, 'store replaces');
    assert.is(await s.erase('reg.example:5000'), true);
    assert.is(await s.get('reg.example:5000'), undefined);
    assert.is(await s.erase('reg.example:5000'), false);
  });
  test(`${name}: Docker Hub credentials live under https://index.docker.io/v1/`, async () => {
    const s = make();
    await s.store('docker.io', { username: 'hub', password: 'h' });
    assert.equal(await s.get('docker.io'), { username: 'hub', password: 'h' });
    await s.erase('docker.io');
  });
  test(`${name}: identity tokens round-trip`, async () => {
    const s = make();
    await s.store('ghcr.example', { username: 'u', password: '', identityToken: 'refresh-me' });
    assert.is((await s.get('ghcr.example'))?.identityToken, 'refresh-me');
    await s.erase('ghcr.example');
  });
}

const cfgDir = path.join(base, 'docker');
suite('config.json auths', () => new ConfigFileSource(cfgDir));
suite('credential helper', () => new HelperSource('testhelper'));

test('config.json: entries written by other tools (scheme, path, username/password fields) are found; the file is 0600', async () => {
  const dir = path.join(base, 'other');
  fs.mkdirSync(dir);
  fs.writeFileSync(
    path.join(dir, 'config.json'),
    JSON.stringify({
      auths: { 'https://reg.example:5000/v2/': { auth: Buffer.from('a:b').toString('base64') }, 'http://plain.example': { username: 'c', password: 'd' } },
      proxies: { keep: 'me' },
    }),
  );
  const s = new ConfigFileSource(dir);
  assert.equal(await s.get('reg.example:5000'), { username: 'a', password: 'b' });
  assert.equal(await s.get('plain.example'), { username: 'c', password: 'd' });
  await s.store('new.example', { username: 'e', password: 'f' });
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  assert.equal(cfg.proxies, { keep: 'me' }, 'other settings survive');
  assert.is(fs.statSync(path.join(dir, 'config.json')).mode & 0o777, 0o600);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ auths: { 'bad.example': { auth: Buffer.from('nocolon').toString('base64') } } }));
  await s.get('bad.example').then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /tsbuild login bad.example/),
  );
  fs.writeFileSync(path.join(dir, 'config.json'), '{not json');
  await s.get('x.example').then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /cannot read .*config\.json/),
  );
});

test('lookup order: credHelpers, then auths, then credsStore; login goes where Docker would put it', async () => {
  const dir = path.join(base, 'order');
  fs.mkdirSync(dir);
  await new HelperSource('testhelper').store('helped.example', { username: 'from-helper', password: '1' });
  await new HelperSource('testhelper').store('stored.example', { username: 'from-store', password: '2' });
  fs.writeFileSync(
    path.join(dir, 'config.json'),
    JSON.stringify({ credHelpers: { 'helped.example': 'testhelper' }, credsStore: 'testhelper', auths: { 'file.example': { auth: Buffer.from('from-file:3').toString('base64') }, 'helped.example': { auth: Buffer.from('shadowed:0').toString('base64') } } }),
  );
  assert.is((await lookupCredentials('helped.example', dir))?.username, 'from-helper');
  assert.is((await lookupCredentials('file.example', dir))?.username, 'from-file');
  assert.is((await lookupCredentials('stored.example', dir))?.username, 'from-store');
  assert.is(await lookupCredentials('none.example', dir), undefined);
  assert.is(sourceFor('helped.example', dir).name, 'docker-credential-testhelper');
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ credHelpers: { 'gone.example': 'nosuchhelper' } }));
  await lookupCredentials('gone.example', dir).then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /docker-credential-nosuchhelper cannot run/),
  );
});

test.after(() => fs.rmSync(base, { recursive: true, force: true }));
test.run();
