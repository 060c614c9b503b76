/**
 * Another platform's images under qemu-user, with nothing changed on the host: `build --platform
 * linux/arm64` runs RUN steps as arm64 programs, FROM --platform=$BUILDPLATFORM stages run natively
 * and hand their files on, the image says arm64, and `run`/`exec` run it. The arm64 busybox is
 * Debian's (scripts/fetch-arm64-busybox.sh, run by the test line); qemu-user-static is Debian's.
 */
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { busyboxPath, cli, registryUnavailable, removeStore, startRegistry, tmpdir } from '../testutil/index.js';
import { lifecycleFixture } from './lifecycle.fixture.js';

const { itUnless, root, ctx, test, tsb, withContainers } = lifecycleFixture('emu');
async function inspect(name: string): Promise<{ Id: string; Digest: string; Architecture: string; Os: string }> {
  const r = await tsb(['inspect', name]);
  assert.is(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { Id: string; Digest: string; Architecture: string; Os: string }[])[0]!;
}
const ARM_BUSYBOX = process.env.TSBUILD_TEST_ARM64_BUSYBOX ?? '/var/cache/tsbuild-test/arm64/bin/busybox';
const why =
  process.arch !== 'x64'
    ? 'the emulation tests run arm64 programs on an x86-64 machine'
    : !fs.existsSync('/usr/bin/qemu-aarch64-static')
      ? 'qemu-user-static is not installed (apt-get install -y qemu-user-static)'
      : !fs.existsSync(ARM_BUSYBOX)
        ? `no arm64 busybox at ${ARM_BUSYBOX} (sh scripts/fetch-arm64-busybox.sh)`
        : undefined;
const dirs: string[] = [];
test.after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** The host's binfmt_misc handlers, when it is mounted: tsbuild must add none. */
function hostHandlers(): string[] {
  try {
    return fs.readdirSync('/proc/sys/fs/binfmt_misc').filter((f) => f !== 'register' && f !== 'status');
  } catch {
    return [];
  }
}

function armContext(dockerfile: string): string {
  const d = tmpdir('tsb-emu-ctx-');
  dirs.push(d);
  fs.copyFileSync(ARM_BUSYBOX, path.join(d, 'busybox'));
  fs.chmodSync(path.join(d, 'busybox'), 0o755);
  fs.writeFileSync(path.join(d, 'Dockerfile'), dockerfile);
  return d;
}

itUnless(why, 'build --platform linux/arm64: RUN steps run as arm64 under qemu-user, the image says arm64, the host gets no handler', async () => {
  const before = hostHandlers();
  const d = armContext('FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nARG TARGETPLATFORM\nARG BUILDPLATFORM\nRUN uname -m > /arch && echo "$TARGETPLATFORM $BUILDPLATFORM" > /plat\n');
  const r = await tsb(['--progress', 'plain', '--platform', 'linux/arm64', '-t', 'emu-base', d]);
  assert.is(r.code, 0, r.stderr);
  const i = await inspect('emu-base');
  assert.is(i.Architecture, 'arm64');
  assert.is(i.Os, 'linux');
  assert.equal(hostHandlers(), before, 'no handler was registered on the host');
  const run = await tsb(['run', '--rm', 'emu-base', 'cat', '/arch', '/plat']);
  assert.is(run.code, 0, run.stderr);
  assert.is(run.stdout, 'aarch64\nlinux/arm64 linux/amd64\n');
  assert.match(run.stderr, /WARNING: the image's platform \(linux\/arm64\) does not match this machine's \(linux\/amd64\) and no --platform was given: it runs under emulation/);
  const asked = await tsb(['run', '--rm', '--platform', 'linux/arm64', 'emu-base', 'uname', '-m']);
  assert.is(asked.stdout, 'aarch64\n');
  assert.not.match(asked.stderr, /WARNING/, 'no warning when the platform was asked for');

  // The same build again: every step from the cache, the same image.
  const again = await tsb(['--progress', 'plain', '--platform', 'linux/arm64', '-t', 'emu-base', d]);
  assert.is(again.code, 0, again.stderr);
  assert.not.match(again.stderr, /cache miss/);
  assert.is((await inspect('emu-base')).Id, i.Id);
});

itUnless(why, 'a cross build: a FROM --platform=$BUILDPLATFORM stage runs natively and hands its files to the arm64 stage', async () => {
  // A host busybox image for the native stage (the harness's context makes one).
  const host = ctx('');
  assert.is((await tsb(['-t', 'emu-host', host])).code, 0);
  const d = armContext(
    'FROM --platform=$BUILDPLATFORM emu-host AS tools\nARG TARGETARCH\nRUN echo "built on $(uname -m) for $TARGETARCH" > /made\n' +
      'FROM emu-base\nCOPY --from=tools /made /made\nRUN uname -m >> /made\n',
  );
  const r = await cli(['--progress', 'plain', '--platform', 'linux/arm64', '-t', 'emu-cross', d], { root, env: { TSBUILD_PULL: 'never' } });
  assert.is(r.code, 0, r.stderr);
  assert.is((await tsb(['run', '--rm', '--platform', 'linux/arm64', 'emu-cross', 'cat', '/made'])).stdout, 'built on x86_64 for arm64\naarch64\n');
  assert.is((await inspect('emu-cross')).Architecture, 'arm64');

  // Built for this machine, an arm64 image is not its base: with pulls off, the mismatch is the error.
  const native = armContext('FROM emu-base\nRUN true\n');
  const bad = await cli(['--progress', 'plain', native], { root, env: { TSBUILD_PULL: 'never' } });
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /image "emu-base" is linux\/arm64, not linux\/amd64 as asked: pull it for that platform/);
});

itUnless(why, 'a detached arm64 container: exec runs arm64 programs in it; stop and rm leave nothing', async () => {
  await withContainers(['emu-d'], async () => {
    const r = await tsb(['run', '-d', '--name', 'emu-d', '--platform', 'linux/arm64', 'emu-base', 'sleep', '300']);
    assert.is(r.code, 0, r.stderr);
    const e = await tsb(['exec', 'emu-d', 'uname', '-m']);
    assert.is(e.stdout, 'aarch64\n', e.stderr);
    assert.is((await tsb(['stop', '-t', '1', 'emu-d'])).code, 0);
  });
  assert.equal((await tsb(['ps', '-a', '-q'])).stdout, '');
});

itUnless(why, 'run --platform refuses a bad value and an image of another platform with pulls off', async () => {
  const bad = await tsb(['run', '--rm', '--platform', 'arm64', 'emu-base', 'true']);
  assert.is(bad.code, 125);
  assert.match(bad.stderr, /--platform arm64: invalid platform "arm64": use os\/arch/);
  const other = await cli(['run', '--rm', '--pull', 'never', '--platform', 'linux/amd64', 'emu-base', 'true'], { root });
  assert.is(other.code, 125);
  assert.match(other.stderr, /image "emu-base" is linux\/arm64, not linux\/amd64 as asked/);
});

itUnless(why ?? registryUnavailable(), '--platform linux/amd64,linux/arm64: one name on an image index; run picks this machine or --platform; push sends the index; each entry is the single-platform build', async () => {
  const d = armContext('FROM scratch\nARG TARGETARCH\nCOPY busybox-$TARGETARCH /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nRUN uname -m > /arch\n');
  fs.renameSync(path.join(d, 'busybox'), path.join(d, 'busybox-arm64'));
  fs.copyFileSync(busyboxPath()!, path.join(d, 'busybox-amd64'));
  const r = await tsb(['--progress', 'plain', '--platform', 'linux/amd64,linux/arm64', '-t', 'emu-multi', d]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /building for linux\/amd64[\s\S]*building for linux\/arm64/);
  const images = (await tsb(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'])).stdout.split('\n').filter((l) => l.startsWith('emu-multi:'));
  assert.is(images.length, 1, 'one row for the multi-platform name');
  assert.is((await tsb(['run', '--rm', 'emu-multi', 'cat', '/arch'])).stdout, 'x86_64\n', "this machine's entry by default");
  assert.is((await tsb(['run', '--rm', '--platform', 'linux/arm64', 'emu-multi', 'cat', '/arch'])).stdout, 'aarch64\n');
  assert.is((await inspect('emu-multi')).Architecture, 'amd64');
  const none = await tsb(['run', '--rm', '--platform', 'linux/s390x', '--pull', 'never', 'emu-multi', 'true']);
  assert.is(none.code, 125);
  assert.match(none.stderr, /image "emu-multi" has no linux\/s390x image \(it has: linux\/amd64, linux\/arm64\)/);

  // Each entry is what a build for that platform alone makes, byte for byte.
  const one = await tsb(['--progress', 'plain', '--platform', 'linux/arm64', '-t', 'emu-one-arm', d]);
  assert.is(one.code, 0, one.stderr);
  const idx = JSON.parse((await tsb(['inspect', '--format', '{{json .Index}}', 'emu-multi'])).stdout) as { manifests: { digest: string; platform: { architecture: string } }[] };
  const armEntry = idx.manifests.find((m) => m.platform.architecture === 'arm64')!.digest;
  assert.is((await inspect('emu-one-arm')).Digest, armEntry);

  // Pushed as an index; pulled for arm64 into an empty store, it runs there.
  const reg = await startRegistry();
  const fresh = tmpdir('tsb-emu-fresh-');
  try {
    const push = await tsb(['push', 'emu-multi', `${reg.host}/emu/multi:1`]);
    assert.is(push.code, 0, push.stderr);
    const res = await fetch(`http://${reg.host}/v2/emu/multi/manifests/1`, { headers: { accept: 'application/vnd.oci.image.index.v1+json' } });
    const remote = (await res.json()) as { mediaType: string; manifests: { platform: { architecture: string } }[] };
    assert.is(remote.mediaType, 'application/vnd.oci.image.index.v1+json');
    assert.equal(remote.manifests.map((m) => m.platform.architecture).sort(), ['amd64', 'arm64']);
    const pull = await cli(['pull', '--platform', 'linux/arm64', `${reg.host}/emu/multi:1`], { root: fresh });
    assert.is(pull.code, 0, pull.stderr);
    assert.is((await cli(['run', '--rm', `${reg.host}/emu/multi:1`, 'cat', '/arch'], { root: fresh })).stdout, 'aarch64\n');
  } finally {
    await reg.stop();
    removeStore(fresh);
  }

  // tag names the index; save writes this machine's entry, which loads and runs elsewhere.
  assert.is((await tsb(['tag', 'emu-multi', 'emu-multi-alias'])).code, 0);
  const aliasIdx = JSON.parse((await tsb(['inspect', '--format', '{{json .Index}}', 'emu-multi-alias'])).stdout) as { digest: string };
  const multiIdx = JSON.parse((await tsb(['inspect', '--format', '{{json .Index}}', 'emu-multi'])).stdout) as { digest: string };
  assert.is(aliasIdx.digest, multiIdx.digest);
  const saved = path.join(tmpdir('tsb-emu-save-'), 'multi.tar');
  dirs.push(path.dirname(saved));
  // save (with --platform's flags), load into an empty store, and what the loaded image's uname says
  const archOfSaved = async (file: string, flags: string[]): Promise<string> => {
    assert.is((await tsb(['save', ...flags, '-o', file, 'emu-multi'])).code, 0);
    const other = tmpdir('tsb-emu-load-');
    try {
      assert.is((await cli(['load', '-i', file], { root: other })).code, 0);
      return (await cli(['run', '--rm', 'emu-multi', 'cat', '/arch'], { root: other })).stdout;
    } finally {
      removeStore(other);
    }
  };
  assert.is(await archOfSaved(saved, []), 'x86_64\n');
  assert.is(await archOfSaved(path.join(path.dirname(saved), 'arm.tar'), ['--platform', 'linux/arm64']), 'aarch64\n');
  const wrong = await tsb(['save', '--platform', 'linux/arm64', '-o', path.join(path.dirname(saved), 'x.tar'), 'emu-host']);
  assert.is(wrong.code, 1);
  assert.match(wrong.stderr, /image emu-host is linux\/amd64, and does not provide linux\/arm64/);
  assert.is((await tsb(['rmi', 'emu-multi-alias'])).code, 0);

  // An OCI archive holds the index and both platforms' images; a Docker archive cannot.
  const ociOut = path.join(path.dirname(saved), 'multi-oci.tar');
  const oci = await tsb(['--platform', 'linux/amd64,linux/arm64', '--annotation', 'index:org.opencontainers.image.description=two platforms', '--output', `type=oci,dest=${ociOut}`, '-t', 'emu-multi', d]);
  assert.is(oci.code, 0, oci.stderr);
  const unpacked = tmpdir('tsb-emu-oci-');
  dirs.push(unpacked);
  assert.is(spawnSync('tar', ['-xf', ociOut, '-C', unpacked]).status, 0);
  const blob = (digest: string) => JSON.parse(fs.readFileSync(path.join(unpacked, 'blobs/sha256', digest.slice(7)), 'utf8')) as { mediaType: string; manifests: { digest: string; platform: { architecture: string } }[]; layers: { mediaType: string }[] };
  const top = JSON.parse(fs.readFileSync(path.join(unpacked, 'index.json'), 'utf8')) as { manifests: { mediaType: string; digest: string }[] };
  assert.is(top.manifests[0]!.mediaType, 'application/vnd.oci.image.index.v1+json');
  const inner = blob(top.manifests[0]!.digest) as ReturnType<typeof blob> & { annotations?: Record<string, string> };
  assert.equal(inner.annotations, { 'org.opencontainers.image.description': 'two platforms' }, '--annotation index: lands on the index');
  assert.equal(inner.manifests.map((m) => m.platform.architecture).sort(), ['amd64', 'arm64']);
  for (const m of inner.manifests) assert.ok(blob(m.digest).layers.every((l) => l.mediaType.endsWith('+gzip')), 'layers gzip as in any OCI archive');
  const unnamed = await tsb(['--platform', 'linux/amd64,linux/arm64', d]);
  assert.is(unnamed.code, 0, unnamed.stderr);
  assert.match(unnamed.stderr, /a multi-platform image without a name is not kept as one: .*give -t to keep the index/);
  const bad = await tsb(['--platform', 'linux/amd64,linux/arm64', '--output', 'type=docker,dest=/tmp/never-written.tar', d]);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /a docker output holds one platform's image/);
  assert.is((await tsb(['rmi', 'emu-multi'])).code, 0);
  assert.not.match((await tsb(['images'])).stdout, /emu-multi/);
  assert.is((await tsb(['run', '--rm', '--platform', 'linux/arm64', 'emu-one-arm', 'cat', '/arch'])).stdout, 'aarch64\n', 'what another name holds stays');
});

test.run();
