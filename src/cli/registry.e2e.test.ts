/**
 * tsbuild against real registries on 127.0.0.1 (Debian's docker-registry): plain, htpasswd Basic auth,
 * token auth with a test issuer; interoperability with skopeo; faults injected by a proxy.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cli, cliPath, cliSpawn, onTerminal, programUnavailable, readJSON, startFaultProxy, startRegistry, startTokenIssuer, tmpdir } from '../testutil/index.js';
import { registryFixture } from './registry.fixture.js';

const { h, it, root, ctx, env, newStore, skopeo, buildHello, storeManifest, registry } = registryFixture('reg');
const podmanWhy = programUnavailable('podman');
h.skipPart(podmanWhy, 'outputs: podman load of the docker archive gives the same image id');

it('push to a plain registry; skopeo inspects and copies it; an empty store pulls and runs it', async () => {
  const id = await buildHello('pushme');
  const ref = `${registry().host}/tests/pushme:v1`;
  const push = await cli(['push', 'pushme', ref], { root, env });
  assert.is(push.code, 0, push.stderr);
  const digest = /digest: (sha256:[a-f0-9]{64})/.exec(push.stdout)?.[1];
  assert.ok(digest, push.stdout);
  const insp = skopeo(['inspect', '--tls-verify=false', `docker://${ref}`]);
  assert.is(insp.code, 0, insp.out);
  assert.is(JSON.parse(insp.out).Digest, digest, 'skopeo sees the digest tsbuild printed');
  const raw = JSON.parse(skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]).out);
  assert.ok(raw.layers.every((l: { mediaType: string }) => l.mediaType === 'application/vnd.oci.image.layer.v1.tar+gzip'), 'gzip by default');
  const oci = tmpdir('tsb-reg-oci-');
  try {
    const cp = skopeo(['copy', '-q', '--src-tls-verify=false', `docker://${ref}`, `oci:${oci}:copied`]);
    assert.is(cp.code, 0, cp.out);
  } finally {
    fs.rmSync(oci, { recursive: true, force: true });
  }
  const b = newStore();
  const run = await cli(['run', '--rm', ref], { root: b, env });
  assert.is(run.code, 0, run.stderr);
  assert.is(run.stdout, 'hello pushme\n');
  assert.match(run.stderr, `pulling ${ref}`);
  const images = await cli(['images', '-q'], { root: b, env });
  assert.is(images.code, 0, images.stderr);
  assert.match(images.stdout, id.slice(7, 19), 'the image id (config digest) survives the round trip');
  const again = await cli(['pull', ref], { root: b, env });
  assert.is(again.code, 0, again.stderr);
  assert.not.match(again.stderr, /transferring/, 'blobs already present are not downloaded again');
  assert.match(again.stdout, `${ref}: ${digest}`);
});

it('a flipped byte in a stored layer is caught before it leaves the store: push, save and verify name the blob and its file', async () => {
  await buildHello('flipped');
  const layer = storeManifest(root, 'flipped:latest').layers.at(-1)!;
  const file = path.join(root, 'blobs/sha256', layer.digest.slice(7));
  const bytes = fs.readFileSync(file);
  bytes[600] ^= 1;
  fs.writeFileSync(file, bytes);
  const named = new RegExp(`blob ${layer.digest} in the store is corrupt: ${file} hashes to sha256:`);
  const ref = `${registry().host}/tests/flipped:v1`;
  const push = await cli(['push', 'flipped', ref], { root, env });
  assert.is(push.code, 1, push.stdout);
  assert.match(push.stderr, named);
  assert.is(skopeo(['inspect', '--tls-verify=false', `docker://${ref}`]).code === 0, false, 'nothing was tagged in the registry');
  const out = tmpdir('tsb-flip-');
  try {
    const save = await cli(['save', '-o', path.join(out, 'x.tar'), 'flipped'], { root, env });
    assert.is(save.code, 1);
    assert.match(save.stderr, named);
    const verify = await cli(['verify', 'flipped'], { root, env });
    assert.is(verify.code, 1);
    assert.match(verify.stderr, named);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
    bytes[600] ^= 1;
    fs.writeFileSync(file, bytes);
  }
  assert.is((await cli(['verify', 'flipped'], { root, env })).code, 0, 'the repaired blob verifies');
});

it('an image skopeo put into the registry is pulled and run by tsbuild', async () => {
  await buildHello('viaskopeo');
  const ref = `${registry().host}/tests/viaskopeo:1`;
  const cp = skopeo(['copy', '-q', '--dest-tls-verify=false', '--dest-compress-format', 'gzip', `oci:${root}:viaskopeo:latest`, `docker://${ref}`]);
  assert.is(cp.code, 0, cp.out);
  const b = newStore();
  const pull = await cli(['pull', ref], { root: b, env });
  assert.is(pull.code, 0, pull.stderr);
  const run = await cli(['run', '--rm', ref], { root: b, env });
  assert.is(run.stdout, 'hello viaskopeo\n', run.stderr);
  // Docker v2 schema 2 too: skopeo converts on the way in.
  const dref = `${registry().host}/tests/viaskopeo:docker`;
  assert.is(skopeo(['copy', '-q', '--dest-tls-verify=false', '--format', 'v2s2', `oci:${root}:viaskopeo:latest`, `docker://${dref}`]).code, 0);
  const raw = JSON.parse(skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${dref}`]).out);
  assert.is(raw.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
  const c = newStore();
  const run2 = await cli(['run', '--rm', dref], { root: c, env });
  assert.is(run2.stdout, 'hello viaskopeo\n', run2.stderr);
});

it('zstd and uncompressed layers, chunked uploads, cross-repository mounts, tag, build FROM a registry image', async () => {
  await buildHello('variants');
  const z = `${registry().host}/tests/variants:zstd`;
  const pz = await cli(['push', '--compression', 'zstd', '--chunk-size', '65536', 'variants', z], { root, env });
  assert.is(pz.code, 0, pz.stderr);
  const raw = JSON.parse(skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${z}`]).out);
  assert.ok(raw.layers.every((l: { mediaType: string }) => l.mediaType.endsWith('+zstd')), JSON.stringify(raw.layers));
  const u = `${registry().host}/tests/variants:raw`;
  assert.is((await cli(['push', '--compression', 'uncompressed', 'variants', u], { root, env })).code, 0);
  const rawU = JSON.parse(skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${u}`]).out);
  assert.ok(rawU.layers.every((l: { mediaType: string }) => l.mediaType === 'application/vnd.oci.image.layer.v1.tar'));
  for (const ref of [z, u]) {
    const s = newStore();
    const r = await cli(['run', '--rm', ref], { root: s, env });
    assert.is(r.stdout, 'hello variants\n', `${ref}: ${r.stderr}`);
  }
  // Same blobs, another repository: mounted, not uploaded.
  const other = await cli(['push', '--compression', 'zstd', 'variants', `${registry().host}/elsewhere/variants:1`], { root, env });
  assert.is(other.code, 0, other.stderr);
  assert.match(other.stderr, /mounted from tests\/variants/);
  assert.not.match(other.stderr, /transferring/);
  // tag, then push under the new name.
  assert.is((await cli(['tag', 'variants', `${registry().host}/tests/tagged:7`], { root, env })).code, 0);
  const pt = await cli(['push', `${registry().host}/tests/tagged:7`], { root, env });
  assert.is(pt.code, 0, pt.stderr);
  // A build whose FROM names a registry image pulls it.
  const s = newStore();
  const d = ctx(`FROM ${registry().host}/tests/tagged:7\nRUN echo built-on-pulled >> /greeting.txt\n`.replace(/^FROM base AS base\n/, ''));
  fs.writeFileSync(path.join(d, 'Dockerfile'), `FROM ${registry().host}/tests/tagged:7\nRUN cat /greeting.txt > /out.txt && echo built-on-pulled >> /out.txt\nCMD ["cat", "/out.txt"]\n`);
  const b = await cli(['-t', 'onpulled', '--progress', 'plain', d], { root: s, env });
  assert.is(b.code, 0, b.stderr);
  assert.match(b.stderr, `pulling ${registry().host}/tests/tagged:7`);
  const r = await cli(['run', '--rm', 'onpulled'], { root: s, env });
  assert.is(r.stdout, 'hello variants\nbuilt-on-pulled\n', r.stderr);
  const m = storeManifest(s, 'onpulled:latest');
  assert.ok(m.layers.every((l) => l.mediaType.startsWith('application/vnd.oci.image.layer.')), 'built images carry OCI layer types only');
});

it('outputs: oci and docker archives (skopeo, podman load), local directory, stdout, --push', async () => {
  const d = ctx('COPY greeting.txt /greeting.txt\nRUN mkdir -p /data && echo x > /data/x && ln -s x /data/link\nCMD ["cat", "/greeting.txt"]\n', { 'greeting.txt': 'hello outputs\n' });
  const out = tmpdir('tsb-reg-out-');
  try {
    const oci = path.join(out, 'img.oci.tar');
    const dock = path.join(out, 'img.docker.tar');
    const local = path.join(out, 'fs');
    const ref = `${registry().host}/tests/outputs:1`;
    const b = await cli(['-q', '-t', ref, '--push', '-o', `type=oci,dest=${oci}`, '-o', `type=docker,dest=${dock}`, '-o', `type=local,dest=${local}`, d], { root, env });
    assert.is(b.code, 0, b.stderr);
    const id = b.stdout.trim();
    const io = skopeo(['inspect', `oci-archive:${oci}`]);
    assert.is(io.code, 0, io.out);
    const pushed = JSON.parse(skopeo(['inspect', '--tls-verify=false', `docker://${ref}`]).out).Digest;
    assert.is(JSON.parse(io.out).Digest, pushed, 'the OCI archive holds the manifest that was pushed');
    const id2 = JSON.parse(skopeo(['inspect', '--config', `docker-archive:${dock}`]).out);
    assert.ok(id2.rootfs, 'skopeo reads the docker archive');
    assert.is(fs.readFileSync(path.join(local, 'greeting.txt'), 'utf8'), 'hello outputs\n');
    assert.is(fs.readlinkSync(path.join(local, 'data/link')), 'x');
    assert.ok(fs.existsSync(path.join(local, 'bin/busybox')));
    if (!podmanWhy) {
      const pr = path.join(out, 'podman');
      const args = ['--root', `${pr}/root`, '--runroot', `${pr}/run`, '--storage-driver', 'vfs'];
      const load = spawnSync('podman', [...args, 'load', '-i', dock], { encoding: 'utf8' });
      assert.is(load.status, 0, load.stderr);
      const pid = spawnSync('podman', [...args, 'image', 'inspect', '--format', '{{.Id}}', ref], { encoding: 'utf8' });
      assert.is(pid.stdout.trim(), id.slice(7), 'podman load gives the same image id');
    }
    const stdout = await new Promise<Buffer>((resolve, reject) => {
      const child = spawnSync(cliPath, ['-o', 'type=oci,dest=-', d], { env: { ...process.env, TSBUILD_ROOT: root, ...env }, maxBuffer: 64 << 20 });
      if (child.status !== 0) reject(new Error(child.stderr.toString()));
      else resolve(child.stdout);
    });
    assert.is(stdout.subarray(0, 10).toString(), 'oci-layout', 'dest=- streams the archive to stdout');
    const bad = await cli(['-o', 'type=oci', d], { root, env });
    assert.is(bad.code, 2);
    assert.match(bad.stderr, /needs dest=/);
    const nopush = await cli(['--push', d], { root, env });
    assert.is(nopush.code, 2);
    assert.match(nopush.stderr, /--push needs an image name/);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

it('errors: unknown tag, unknown repository, invalid reference, unreachable registry', async () => {
  const s = newStore();
  const missing = await cli(['pull', `${registry().host}/tests/pushme:nope`], { root: s, env });
  assert.is(missing.code, 1);
  assert.match(missing.stderr, `manifest unknown: ${registry().host}/tests/pushme:nope`);
  assert.match(missing.stderr, /MANIFEST_UNKNOWN/);
  const repo = await cli(['pull', `${registry().host}/no/such/repo`], { root: s, env });
  assert.is(repo.code, 1);
  assert.match(repo.stderr, /unknown/i);
  const bad = await cli(['pull', 'Bad/Name'], { root: s, env });
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /invalid image reference "Bad\/Name": repository names must be lowercase/);
  const port = (await import('../testutil/index.js')).freePort;
  const dead = `127.0.0.1:${await port()}`;
  const un = await cli(['pull', `${dead}/x:1`], { root: s, env });
  assert.is(un.code, 1);
  assert.match(un.stderr, `cannot reach registry ${dead}`);
  const buildMissing = ctx('');
  fs.writeFileSync(path.join(buildMissing, 'Dockerfile'), `FROM ${registry().host}/tests/absent:1\nRUN true\n`);
  const bm = await cli(['--progress', 'plain', buildMissing], { root: s, env });
  assert.is(bm.code, 1);
  assert.match(bm.stderr, `manifest unknown: ${registry().host}/tests/absent:1`);
  assert.is(fs.readdirSync(path.join(s, 'tmp')).filter((f) => f.startsWith('ingest-')).length, 0);
});

it('htpasswd Basic auth: 401 says to log in; a wrong password is refused; login, push, pull, logout', async () => {
  const reg = await startRegistry({ htpasswd: { alice: 's3cret' } });
  const cfg = tmpdir('tsb-reg-cfg-');
  const e = { ...env, DOCKER_CONFIG: cfg };
  try {
    await buildHello('authed');
    const ref = `${reg.host}/team/authed:1`;
    const denied = await cli(['push', 'authed', ref], { root, env: e });
    assert.is(denied.code, 1);
    assert.match(denied.stderr, `401 unauthorized`);
    assert.match(denied.stderr, `run tsbuild login ${reg.host}`);
    const wrong = await cli(['login', '-u', 'alice', '--password-stdin', reg.host], { root, env: e, input: 'nope\n' });
    assert.is(wrong.code, 1);
    assert.match(wrong.stderr, /401 unauthorized/);
    assert.not.ok(fs.existsSync(path.join(cfg, 'config.json')), 'refused credentials are not stored');
    // On a terminal (a real pty, through script(1)), login asks, and does not echo the password.
    const tty = await onTerminal(['login', reg.host], { ...e, TSBUILD_ROOT: root }, [['Username: ', 'alice\n'], ['Password: ', 's3cret\n']]);
    assert.is(tty.status, 0, tty.stdout);
    assert.match(tty.stdout, /Username: alice\r?\n/);
    assert.match(tty.stdout, /Password: \r?\n/);
    assert.not.match(tty.stdout, /s3cret/, 'the password is not echoed');
    assert.match(tty.stdout, /Login Succeeded/);
    fs.rmSync(path.join(cfg, 'config.json'));
    const ok = await cli(['login', '-u', 'alice', '--password-stdin', reg.host], { root, env: e, input: 's3cret\n' });
    assert.is(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /Login Succeeded/);
    const stored = readJSON<{ auths: Record<string, { auth: string }> }>(path.join(cfg, 'config.json'));
    assert.is(Buffer.from(stored.auths[reg.host]!.auth, 'base64').toString(), 'alice:s3cret');
    assert.is(fs.statSync(path.join(cfg, 'config.json')).mode & 0o777, 0o600);
    const push = await cli(['push', 'authed', ref], { root, env: e });
    assert.is(push.code, 0, push.stderr);
    const s = newStore();
    const run = await cli(['run', '--rm', ref], { root: s, env: e });
    assert.is(run.stdout, 'hello authed\n', run.stderr);
    const out = await cli(['logout', reg.host], { root, env: e });
    assert.is(out.code, 0, out.stderr);
    const after = await cli(['pull', ref], { root: newStore(), env: e });
    assert.match(after.stderr, /401 unauthorized/);
  } finally {
    await reg.stop();
    fs.rmSync(cfg, { recursive: true, force: true });
  }
});

it('token auth: the Bearer flow with scopes; login, push, pull, cross-repo mount scopes; anonymous refused', async () => {
  const issuer = await startTokenIssuer({ bob: 'pw' });
  const reg = await startRegistry({ token: issuer });
  const cfg = tmpdir('tsb-reg-cfg-');
  const e = { ...env, DOCKER_CONFIG: cfg };
  try {
    await buildHello('tokened');
    const ref = `${reg.host}/team/tokened:1`;
    const anon = await cli(['push', 'tokened', ref], { root, env: e });
    assert.is(anon.code, 1);
    assert.match(anon.stderr, /401 unauthorized|denied/);
    const wrong = await cli(['login', '-u', 'bob', '-p', 'bad', reg.host], { root, env: e });
    assert.is(wrong.code, 1);
    assert.match(wrong.stderr, `run tsbuild login ${reg.host}`);
    const login = await cli(['login', '-u', 'bob', '--password-stdin', reg.host], { root, env: e, input: 'pw' });
    assert.is(login.code, 0, login.stderr);
    issuer.requests.length = 0;
    const push = await cli(['push', 'tokened', ref], { root, env: e });
    assert.is(push.code, 0, push.stderr);
    assert.ok(issuer.requests.every((r) => r.user === 'bob' && r.service === issuer.service));
    assert.ok(issuer.requests.some((r) => r.scopes.includes('repository:team/tokened:pull,push')), JSON.stringify(issuer.requests));
    assert.ok(issuer.requests.length <= 3, `tokens are reused within one push (${issuer.requests.length} token requests)`);
    issuer.requests.length = 0;
    const mount = await cli(['push', 'tokened', `${reg.host}/other/tokened:1`], { root, env: e });
    assert.is(mount.code, 0, mount.stderr);
    assert.match(mount.stderr, /mounted from team\/tokened/);
    assert.ok(issuer.requests.some((r) => r.scopes.includes('repository:team/tokened:pull') && r.scopes.includes('repository:other/tokened:pull,push')), JSON.stringify(issuer.requests));
    const run = await cli(['run', '--rm', ref], { root: newStore(), env: e });
    assert.is(run.stdout, 'hello tokened\n', run.stderr);
  } finally {
    await reg.stop();
    await issuer.stop();
    fs.rmSync(cfg, { recursive: true, force: true });
  }
});

it('faults: a reset mid-blob resumes, a 500 is retried, a wrong byte stores nothing, a slow registry completes', async () => {
  await buildHello('faulty');
  const ref0 = `${registry().host}/tests/faulty:1`;
  assert.is((await cli(['push', 'faulty', ref0], { root, env })).code, 0);
  const proxy = await startFaultProxy(registry().host);
  try {
    const ref = `${proxy.host}/tests/faulty:1`;
    const big = storeManifest(root, 'faulty:latest').layers[0]!;
    const pushed = JSON.parse(skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${ref0}`]).out);
    const gz = pushed.layers[0] as { digest: string; size: number };
    proxy.inject('reset-mid-blob', { times: 1, match: new RegExp(gz.digest) });
    const s1 = newStore();
    const r1 = await cli(['pull', ref], { root: s1, env });
    assert.is(r1.code, 0, r1.stderr);
    assert.match(r1.stderr, /resuming at/);
    assert.is(proxy.hits, 1);
    assert.is((await cli(['run', '--rm', ref], { root: s1, env })).stdout, 'hello faulty\n');

    proxy.inject('error-500', { times: 2 });
    const s2 = newStore();
    const r2 = await cli(['pull', ref], { root: s2, env });
    assert.is(r2.code, 0, r2.stderr);
    assert.match(r2.stderr, /retrying GET .* HTTP 500/);

    proxy.inject('wrong-byte', { times: 100, match: new RegExp(gz.digest) });
    const s3 = newStore();
    const r3 = await cli(['pull', ref], { root: s3, env });
    assert.is(r3.code, 1);
    assert.match(r3.stderr, /digest mismatch on blob sha256:[a-f0-9]{64}/);
    assert.match(r3.stderr, /nothing was stored/);
    const blobs = fs.readdirSync(path.join(s3, 'blobs/sha256'));
    assert.not.ok(blobs.includes(gz.digest.slice(7)), 'the corrupted blob is not in the store');
    assert.not.ok(blobs.includes(big.digest.slice(7)));
    assert.not.ok(fs.existsSync(path.join(s3, 'tmp', `ingest-${gz.digest.slice(7)}`)), 'no partial of the lying blob left');
    const imgs = await cli(['images'], { root: s3, env });
    assert.not.match(imgs.stdout, 'faulty', 'no name points at an unverified image');
    // A sibling download cancelled by the failure may keep its verified prefix to resume from (by
    // design, as in registry/pull.test.ts): a clean pull into the same store resumes and verifies it.
    const partials = fs.readdirSync(path.join(s3, 'tmp')).filter((f) => /^ingest-[a-f0-9]{64}$/.test(f));
    if (partials.length > 0) {
      proxy.inject('none');
      const again = await cli(['pull', ref], { root: s3, env });
      assert.is(again.code, 0, `a kept partial is an honest prefix: ${again.stderr}`);
    }

    proxy.inject('slow', { times: 100 });
    const s4 = newStore();
    const r4 = await cli(['pull', ref], { root: s4, env });
    assert.is(r4.code, 0, r4.stderr);

    // A partial download left by an interrupted pull is resumed, not restarted.
    proxy.inject('none');
    const s5 = newStore();
    fs.mkdirSync(path.join(s5, 'tmp'), { recursive: true });
    const gzBytes = Buffer.from(await (await fetch(`http://${registry().host}/v2/tests/faulty/blobs/${gz.digest}`)).arrayBuffer());
    assert.is(gzBytes.length, gz.size);
    fs.writeFileSync(path.join(s5, 'tmp', `ingest-${gz.digest.slice(7)}`), gzBytes.subarray(0, Math.floor(gz.size / 2)));
    const r5 = await cli(['pull', ref], { root: s5, env });
    assert.is(r5.code, 0, r5.stderr);
    assert.match(r5.stderr, `${gz.digest.slice(7, 19)}: resuming at`);

    // Ctrl-C in the middle of a slow download: exit 130, nothing named, the verified prefix kept, resumed next time.
    proxy.inject('slow', { times: 1000, delayMs: 250, match: new RegExp(gz.digest) });
    const s6 = newStore();
    const child = cliSpawn(['pull', ref], s6, env);
    let err = '';
    await new Promise<void>((resolve) => {
      let armed = false;
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        if (!armed && err.includes(`${gz.digest.slice(7, 19)}: transferring`)) {
          armed = true;
          setTimeout(resolve, 800);
        }
      });
    });
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    assert.is(code, 130, err);
    assert.match(err, /pull cancelled/);
    const partial = path.join(s6, 'tmp', `ingest-${gz.digest.slice(7)}`);
    const kept = fs.existsSync(partial) ? fs.statSync(partial).size : 0;
    assert.ok(kept > 0 && kept < gz.size, `a verified prefix is kept (${kept} of ${gz.size}): ${err}`);
    assert.not.ok(fs.existsSync(path.join(s6, 'blobs/sha256', gz.digest.slice(7))), 'no partial blob in the store');
    assert.not.ok(fs.lstatSync(`${partial}.lock`, { throwIfNoEntry: false }), 'the download lock was released');
    assert.not.match((await cli(['images'], { root: s6, env })).stdout, 'faulty', 'a cancelled pull names nothing');
    proxy.inject('none');
    const again = await cli(['pull', ref], { root: s6, env });
    assert.is(again.code, 0, again.stderr);
    assert.match(again.stderr, `${gz.digest.slice(7, 19)}: resuming at`);

    // Push through faults: a 500 on an upload is retried.
    proxy.inject('error-500', { times: 1, match: /\/blobs\/uploads\//, method: 'PUT' });
    await buildHello('faultpush', 'ENV X=1\n');
    const rp = await cli(['push', 'faultpush', `${proxy.host}/tests/faultpush:1`], { root, env });
    assert.is(rp.code, 0, rp.stderr);
    assert.match(rp.stderr, /retrying PUT .* HTTP 500/);
  } finally {
    await proxy.stop();
  }
});

test.run();
