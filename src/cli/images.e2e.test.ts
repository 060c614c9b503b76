/**
 * Image commands as Docker users type them: management forms, global options, history, save, load
 * (ours, podman's, tampered), image prune, system df and prune.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cli, cliPath, e2eHarness, programUnavailable, removeStore, tmpdir } from '../testutil/index.js';

const { it, itUnless, root, dirs, ctx } = e2eHarness('img');

it('Docker habits: management forms, global options first, unknown commands, uid range, when an image was made', async () => {
  const d = ctx('CMD ["true"]\n');
  assert.is((await cli(['-t', 'habits', d], { root })).code, 0);
  let r = await cli(['image', 'ls'], { root });
  assert.is(r.code, 0, r.stderr);
  const line = r.stdout.split('\n').find((l) => l.startsWith('habits '));
  assert.ok(line, r.stdout);
  assert.match(line!, /seconds? ago|Less than a second ago|minutes? ago|About a minute ago/, 'CREATED is when it was built here, not the reproducible epoch');
  assert.not.match(line!, /years ago/);
  r = await cli(['--root', root, 'container', 'ls', '-a'], { root: '/nonexistent-store' });
  assert.is(r.code, 0, `--root before the command: ${r.stderr}`);
  r = await cli(['imgaes'], { root });
  assert.is(r.code, 2);
  assert.match(r.stderr, /unknown command "imgaes" \(did you mean "images"\?\)/);
  r = await cli(['container', 'port', 'web'], { root });
  assert.is(r.code, 1);
  assert.match(r.stderr, /No such container: web/);
  r = await cli(['run', '--rm', '-u', '4294967296', 'habits', 'id'], { root });
  assert.is(r.code, 125);
  assert.match(r.stderr, /uids and gids must be in range 0-2147483647/);
  const u = ctx('USER 4294967296\nRUN true\n');
  r = await cli(['--progress', 'plain', u], { root });
  assert.is(r.code, 1);
  assert.match(r.stderr, /uids and gids must be in range/);
});

itUnless(programUnavailable('skopeo'), 'history shows the steps and layers; save writes Docker and OCI archives others read (same image id)', async () => {
  const d = ctx('RUN echo made > /made\nCMD ["cat", "/made"]\n');
  const b = await cli(['-q', '-t', 'hist:1', d], { root });
  assert.is(b.code, 0, b.stderr);
  const id = b.stdout.trim();
  let r = await cli(['history', 'hist:1'], { root });
  assert.is(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0]!, /^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT/);
  assert.match(lines[1]!, new RegExp(`^${id.slice(7, 19)}\\s.*CMD \\["cat","/made"\\]`), 'newest first, the top row is the image id');
  assert.ok(lines.some((l) => /RUN \/bin\/sh -c echo made > \/made/.test(l) && /\d+(\.\d+)?kB|\d+B/.test(l)), r.stdout);
  assert.is((await cli(['image', 'history', '-q', 'hist:1'], { root })).stdout.split('\n')[0], id.slice(7, 19));
  const exact = await cli(['history', '--human=false', 'hist:1'], { root });
  assert.match(exact.stdout.split('\n')[0]!, /^IMAGE\s+CREATED AT\s+CREATED BY\s+SIZE\s+COMMENT/);
  assert.ok(exact.stdout.split('\n').some((l) => /RUN \/bin\/sh -c echo made > \/made # buildkit\s+\d+\s/.test(l) && /\d{4}-\d\d-\d\dT/.test(l)), `bytes and RFC 3339 times: ${exact.stdout}`);
  const out = tmpdir('tsb-save-');
  dirs.push(out);
  r = await cli(['save', '-o', path.join(out, 'd.tar'), 'hist:1'], { root });
  assert.is(r.code, 0, r.stderr);
  let s = spawnSync('skopeo', ['inspect', '--config', `docker-archive:${path.join(out, 'd.tar')}`], { encoding: 'utf8' });
  assert.is(s.status, 0, s.stderr);
  r = await cli(['image', 'save', '--format', 'oci', '-o', path.join(out, 'o.tar'), 'hist:1'], { root });
  assert.is(r.code, 0, r.stderr);
  s = spawnSync('skopeo', ['inspect', `oci-archive:${path.join(out, 'o.tar')}`], { encoding: 'utf8' });
  assert.is(s.status, 0, s.stderr);
  r = await cli(['save', 'hist:1', 'other'], { root });
  assert.is(r.code, 2);
  assert.match(r.stderr, /save takes one image/);
});

it('rmi --no-prune untags and keeps the layers until the next prune; plain rmi deletes them', async () => {
  const store = `${root}-noprune`;
  try {
    const d = ctx('RUN head -c 50000 /dev/urandom > /r\n');
    const b = await cli(['-q', '-t', 'np:1', d], { root: store });
    assert.is(b.code, 0, b.stderr);
    const [img] = JSON.parse((await cli(['inspect', 'np:1'], { root: store })).stdout) as { Manifest: { layers: { digest: string }[] } }[];
    const top = path.join(store, 'blobs/sha256', img!.Manifest.layers.at(-1)!.digest.slice(7));
    const r = await cli(['rmi', '--no-prune', 'np:1'], { root: store });
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Untagged: np:1\nDeleted: sha256:[a-f0-9]{64}\n$/);
    assert.ok(fs.existsSync(top), 'the layer stays');
    assert.not.match((await cli(['images'], { root: store })).stdout, /np/);
    assert.is((await cli(['prune', '--all'], { root: store })).code, 0);
    assert.not.ok(fs.existsSync(top), 'the next prune takes it');
    assert.is((await cli(['-q', '-t', 'np:2', d], { root: store })).code, 0);
    assert.is((await cli(['rmi', 'np:2'], { root: store })).code, 0);
    assert.not.ok(fs.existsSync(top), 'plain rmi deletes at once');
  } finally {
    removeStore(store);
  }
});

it('image prune, system df and system prune: untagged images go, -a takes unused ones, df adds up', async () => {
  const store = `${root}-prune`;
  try {
    const d = ctx('CMD ["true"]\n');
    assert.is((await cli(['-t', 'keep', d], { root: store })).code, 0);
    const other = ctx('RUN echo other > /o\n');
    assert.is((await cli([other], { root: store })).code, 0, 'an untagged image');
    let r = await cli(['system', 'df'], { root: store });
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, /^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE\nImages\s+2\s+0\s/);
    assert.match(r.stdout, /Build Cache\s+\d+\s+0\s/);
    r = await cli(['system', 'df', '--format', '{{.Type}}={{.TotalCount}}'], { root: store });
    assert.is(r.stdout, 'Images=2\nContainers=0\nLocal Volumes=0\nBuild Cache=' + /Build Cache\s+(\d+)/.exec((await cli(['system', 'df'], { root: store })).stdout)![1] + '\n');
    // -v: Docker's sections, then what holds each snapshot and blob (GC's own roots).
    r = await cli(['system', 'df', '-v'], { root: store });
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Images space usage:\n\nREPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE\s+SHARED SIZE\s+UNIQUE SIZE\s+CONTAINERS\n/);
    assert.match(r.stdout, /^keep\s+latest\s+[a-f0-9]{12}\s/m);
    assert.match(r.stdout, /Containers space usage:[\s\S]*Local Volumes space usage:[\s\S]*Build cache usage: /);
    assert.match(r.stdout, /Store accounting:\n\n\d+ snapshots and \d+ blobs; 0 held by nothing/);
    assert.match(r.stdout, /^snapshot sha256:[a-f0-9]{64}\s+\S+\s+.*image keep:latest/m);
    assert.match(r.stdout, /^blob sha256:[a-f0-9]{64}\s+\S+\s+.*cache [a-f0-9]{12} \(/m);
    r = await cli(['image', 'prune', '-f'], { root: store });
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Deleted Images:\ndeleted: sha256:[a-f0-9]{64}\n\nTotal reclaimed space: /);
    assert.match((await cli(['images'], { root: store })).stdout, /^keep\s/m, 'tagged images stay');
    assert.is((await cli(['run', '--name', 'user', 'keep'], { root: store })).code, 0);
    r = await cli(['image', 'prune', '-a', '-f'], { root: store });
    assert.not.match(r.stdout, /untagged: keep/, 'an image a container uses stays');
    assert.is((await cli(['volume', 'create', 'named-stays'], { root: store })).code, 0);
    assert.is((await cli(['run', '--name', 'anon', '-v', '/data', 'keep'], { root: store })).code, 0);
    r = await cli(['system', 'prune', '-a', '-f', '--volumes'], { root: store });
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, /Deleted 2 containers, 0 networks, 1 volumes, 1 images/);
    assert.is((await cli(['volume', 'ls', '-q'], { root: store })).stdout, 'named-stays\n', 'named volumes stay (Docker 23)');
    assert.is((await cli(['images', '-q'], { root: store })).stdout, '');
  } finally {
    removeStore(store);
  }
});

it('load: Docker and OCI archives (ours and podman\'s) load, keep their image id and run; a tampered or foreign archive is refused', async () => {
  const stores = [`${root}-ldb`, `${root}-ldc`, `${root}-ldd`];
  const out = tmpdir('tsb-load-');
  dirs.push(out);
  try {
    const d = ctx('RUN echo loaded > /l\nCMD ["cat", "/l"]\n');
    const b = await cli(['-q', '-t', 'ld:1', d], { root });
    const id = b.stdout.trim();
    assert.is((await cli(['save', '-o', `${out}/d.tar`, 'ld:1'], { root })).code, 0);
    assert.is((await cli(['save', '--format', 'oci', '-o', `${out}/o.tar`, 'ld:1'], { root })).code, 0);
    let r = await cli(['load', '-i', `${out}/d.tar`], { root: stores[0]! });
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout, 'Loaded image: ld:1\n');
    assert.is((await cli(['run', '--rm', 'ld:1'], { root: stores[0]! })).stdout, 'loaded\n');
    assert.is((await cli(['images', '-q'], { root: stores[0]! })).stdout, `${id.slice(7, 19)}\n`, 'the same image id');
    // From standard input, as `docker load < image.tar`.
    const piped = spawnSync(cliPath, ['image', 'load'], { input: fs.readFileSync(`${out}/o.tar`), env: { ...process.env, TSBUILD_ROOT: stores[1]!, TSBUILD_PULL: 'never' }, encoding: 'utf8' });
    assert.is(piped.status, 0, piped.stderr);
    assert.is(piped.stdout, 'Loaded image: ld:1\n');
    assert.is((await cli(['run', '--rm', 'ld:1'], { root: stores[1]! })).stdout, 'loaded\n');
    if (!programUnavailable('podman')) {
      const pr = `${out}/podman`;
      const args = ['--root', `${pr}/root`, '--runroot', `${pr}/run`, '--storage-driver', 'vfs'];
      assert.is(spawnSync('podman', [...args, 'load', '-i', `${out}/d.tar`]).status, 0);
      const podId = spawnSync('podman', [...args, 'image', 'inspect', '--format', '{{.Id}}', 'ld:1'], { encoding: 'utf8' }).stdout.trim();
      assert.is(`sha256:${podId}`, id, 'podman load of our archive: the same image id');
      const save = spawnSync('podman', [...args, 'save', '--format', 'docker-archive', '-o', `${out}/p.tar`, 'ld:1'], { encoding: 'utf8' });
      assert.is(save.status, 0, save.stderr);
      r = await cli(['load', '-i', `${out}/p.tar`], { root: stores[2]! });
      assert.is(r.code, 0, r.stderr);
      const name = /Loaded image: (\S+)/.exec(r.stdout)?.[1];
      assert.ok(name, r.stdout);
      assert.is((await cli(['run', '--rm', name!], { root: stores[2]! })).stdout, 'loaded\n', 'an archive podman wrote runs');
      spawnSync('podman', [...args, 'rmi', '-a', '-f']);
    }
    // Tampered: one byte of a blob changed inside the OCI archive; and a file that is no image archive.
    const bad = fs.readFileSync(`${out}/o.tar`);
    // The config blob (it holds the RUN line) changes by one byte: its name no longer matches its digest.
    const at = bad.indexOf(Buffer.from('echo loaded'));
    assert.ok(at > 0, 'the config is in the archive uncompressed');
    bad[at] = 0x45;
    fs.writeFileSync(`${out}/bad.tar`, bad);
    r = await cli(['load', '-i', `${out}/bad.tar`], { root: `${root}-ldbad` });
    assert.is(r.code, 1);
    assert.match(r.stderr, /digest/);
    assert.is((await cli(['images', '-q'], { root: `${root}-ldbad` })).stdout, '', 'nothing named');
    fs.writeFileSync(`${out}/junk.tar`, 'just text');
    r = await cli(['load', '-i', `${out}/junk.tar`], { root: `${root}-ldbad` });
    assert.is(r.code, 1);
    assert.match(r.stderr, /neither a Docker archive|tar|header/i);
  } finally {
    for (const s of [...stores, `${root}-ldbad`]) removeStore(s);
  }
});

it('build: --label, --metadata-file, -f - and build - (a Dockerfile, or a gzip context archive, on stdin)', async () => {
  const d = ctx('CMD ["cat", "/greeting"]\nCOPY greeting /greeting\n', { greeting: 'from the context\n' });
  const meta = path.join(d, 'meta.json');
  let r = await cli(['-q', '-t', 'lab:1', '--label', 'org.example.team=core', '--metadata-file', meta, d], { root });
  assert.is(r.code, 0, r.stderr);
  const m = JSON.parse(fs.readFileSync(meta, 'utf8')) as Record<string, string>;
  assert.is(m['containerimage.config.digest'], r.stdout.trim());
  assert.match(m['containerimage.digest']!, /^sha256:[a-f0-9]{64}$/);
  assert.is(m['image.name'], 'lab:1');
  const insp = JSON.parse((await cli(['inspect', 'lab:1'], { root })).stdout) as { Config: { Labels: Record<string, string> } }[];
  assert.equal(insp[0]!.Config.Labels, { 'org.example.team': 'core' });
  const env = { ...process.env, TSBUILD_ROOT: root, TSBUILD_PULL: 'never' };
  const df = fs.readFileSync(path.join(d, 'Dockerfile'));
  let s = spawnSync(cliPath, ['-q', '-t', 'fdash', '-f', '-', d], { input: df, env, encoding: 'utf8' });
  assert.is(s.status, 0, s.stderr);
  const fromDir = s.stdout.trim();
  assert.is((await cli(['run', '--rm', 'fdash'], { root })).stdout, 'from the context\n', '-f - with a context directory');
  const tar = path.join(tmpdir('tsb-stdin-'), 'ctx.tar.gz');
  dirs.push(path.dirname(tar));
  assert.is(spawnSync('tar', ['-czf', tar, '-C', d, '.']).status, 0);
  const memos = () => fs.readdirSync(path.join(root, 'cache', 'checksums')).sort();
  const before = memos();
  s = spawnSync(cliPath, ['-q', '-t', 'fromtar', '-'], { input: fs.readFileSync(tar), env, encoding: 'utf8' });
  assert.is(s.status, 0, s.stderr);
  assert.equal(memos(), before, 'no checksum memo is kept for a context unpacked from stdin, which is gone after the build');
  assert.is(s.stdout.trim(), fromDir, 'build - < ctx.tar gives the image the directory gives');
  assert.is((await cli(['run', '--rm', 'fromtar'], { root })).stdout, 'from the context\n', 'a context archive on stdin');
  s = spawnSync(cliPath, ['-q', '-t', 'nocontext', '-'], { input: 'FROM lab:1\nRUN echo only-dockerfile > /o\nCMD ["cat", "/o"]\n', env, encoding: 'utf8' });
  assert.is(s.status, 0, s.stderr);
  assert.is((await cli(['run', '--rm', 'nocontext'], { root })).stdout, 'only-dockerfile\n', 'a Dockerfile on stdin, no context');
  s = spawnSync(cliPath, ['-q', '-'], { input: 'FROM lab:1\nCOPY greeting /g\n', env, encoding: 'utf8' });
  assert.is(s.status, 1);
  assert.match(s.stderr, /greeting/, 'without a context there is nothing to COPY');
  r = await cli(['-f', '/usr/bin/busybox', d], { root });
  assert.is(r.code, 2);
  assert.match(r.stderr, /\/usr\/bin\/busybox is not a Dockerfile: it holds binary data/);
  assert.not.match(r.stderr, /[\x00-\x08\x0e-\x1f\x7f]/, 'no bytes of the file are printed');
  r = await cli(['--label', 'novalue', d], { root });
  assert.is(r.code, 2);
  assert.match(r.stderr, /--label novalue: use KEY=VALUE/);
});

it('--add-host, --ulimit and --shm-size reach RUN steps (and run); they are part of the step\'s cache key', async () => {
  const d = ctx('RUN grep db /etc/hosts > /hosts; ulimit -n > /nofile; df -k /dev/shm | tail -1 > /shm\nCMD ["cat", "/hosts", "/nofile", "/shm"]\n');
  let r = await cli(['-q', '-t', 'hostsimg', '--add-host', 'db:10.1.2.3', '--ulimit', 'nofile=333:444', '--shm-size', '16m', d], { root });
  assert.is(r.code, 0, r.stderr);
  const out = (await cli(['run', '--rm', 'hostsimg'], { root })).stdout;
  assert.match(out, /^10\.1\.2\.3\s+db\n333\n\S+\s+16384\s/, out);
  r = await cli(['--progress', 'plain', '--add-host', 'db:10.9.9.9', '--ulimit', 'nofile=333:444', '--shm-size', '16m', d], { root });
  assert.match(r.stderr, /cache miss: the instruction changed \(extraHosts\)/, 'another host entry is another step');
  r = await cli(['run', '--rm', '--add-host', 'api:fd00::1', '--shm-size', '8m', 'hostsimg', 'sh', '-c', 'grep api /etc/hosts; df -k /dev/shm | tail -1'], { root });
  assert.match(r.stdout, /^fd00::1\s+api\n\S+\s+8192\s/, r.stdout);
  r = await cli(['--add-host', 'nocolon', d], { root });
  assert.is(r.code, 2);
  assert.match(r.stderr, /--add-host nocolon: use NAME:IP/);
});

it('a damaged config blob: images lists the rest and names it, run names it, a rebuild repairs it, rmi removes the name', async () => {
  const good = ctx('RUN echo good > /g\n');
  const bad = ctx('RUN echo bad > /b\n');
  assert.is((await cli(['-q', '-t', 'good9', good], { root })).code, 0);
  const id = (await cli(['-q', '-t', 'bad9', bad], { root })).stdout.trim();
  const file = path.join(root, 'blobs/sha256', id.slice(7));
  fs.writeFileSync(file, fs.readFileSync(file).subarray(0, 10));
  const named = new RegExp(`blob ${id} in the store is corrupt: ${file} hashes to`);
  const ls = await cli(['images'], { root });
  assert.is(ls.code, 0, ls.stderr);
  assert.match(ls.stdout, /good9/);
  assert.match(ls.stderr, /WARNING: image bad9:latest cannot be read: /);
  assert.match(ls.stderr, named);
  for (const cmd of [['system', 'df'], ['image', 'prune', '-f'], ['inspect', 'good9']]) {
    const r = await cli(cmd, { root });
    assert.is(r.code, 0, `${cmd.join(' ')} works beside a damaged image: ${r.stderr}`);
  }
  const run = await cli(['run', '--rm', 'bad9', 'true'], { root });
  assert.is(run.code, 125);
  assert.match(run.stderr, named);
  assert.is((await cli(['-q', '-t', 'bad9', bad], { root })).code, 0);
  assert.ok(fs.statSync(file).size > 10, 'producing the same config again rewrote the damaged blob');
  assert.is((await cli(['run', '--rm', 'bad9', 'cat', '/b'], { root })).stdout, 'bad\n');
  fs.writeFileSync(file, '');
  const rmi = await cli(['rmi', 'bad9'], { root });
  assert.is(rmi.code, 0, rmi.stderr);
  assert.match(rmi.stdout, /Untagged: bad9:latest/);
  const after = await cli(['images'], { root });
  assert.is(after.stderr, '');
  assert.not.match(after.stdout, /bad9/);
});

it('a name whose data is gone (an rmi racing a run) is "No such image", not a pull of another image of that name', async () => {
  const d = ctx('RUN echo gone > /g\n');
  assert.is((await cli(['-q', '-t', 'localhost:5999/gone:1', d], { root })).code, 0);
  const idx = JSON.parse(fs.readFileSync(path.join(root, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
  const m = idx.manifests.find((x) => x.annotations?.['org.opencontainers.image.ref.name'] === 'localhost:5999/gone:1')!;
  fs.rmSync(path.join(root, 'blobs/sha256', m.digest.slice(7)));
  const r = await cli(['run', '--rm', '--pull', 'missing', 'localhost:5999/gone:1', 'true'], { root });
  assert.is(r.code, 125);
  assert.match(r.stderr, /No such image: localhost:5999\/gone:1 \(the store names it, but blob sha256:[a-f0-9]{64} is missing from the store/);
  assert.not.match(r.stderr, /pulling/);
  assert.is((await cli(['rmi', 'localhost:5999/gone:1'], { root })).code, 0, 'and rmi removes the name');
});

it('--output type=tar: the image\'s filesystem as one tar, to a file or stdout', async () => {
  const d = ctx('RUN mkdir -p /data && echo in-tar > /data/f && ln -s f /data/l\n');
  const out = tmpdir('tsb-outtar-');
  dirs.push(out);
  const r = await cli(['-o', `type=tar,dest=${out}/fs.tar`, d], { root });
  assert.is(r.code, 0, r.stderr);
  const list = spawnSync('tar', ['-tvf', `${out}/fs.tar`], { encoding: 'utf8' });
  assert.is(list.status, 0, list.stderr);
  assert.match(list.stdout, /data\/f\n/);
  assert.match(list.stdout, /data\/l -> f/);
  assert.match(list.stdout, /bin\/busybox/);
  assert.is(spawnSync('tar', ['-xOf', `${out}/fs.tar`, 'data/f'], { encoding: 'utf8' }).stdout, 'in-tar\n');
  const piped = spawnSync(cliPath, ['-q', '-o', 'type=tar,dest=-', d], { env: { ...process.env, TSBUILD_ROOT: root, TSBUILD_PULL: 'never' }, maxBuffer: 64 << 20 });
  assert.is(piped.status, 0, String(piped.stderr));
  assert.is(piped.stdout.length, fs.statSync(`${out}/fs.tar`).size, 'the same tar on stdout, nothing else');
  const quiet = await cli(['-q', '-o', `type=docker,dest=${out}/img.tar`, d], { root });
  assert.match(quiet.stdout, /^sha256:[a-f0-9]{64}\n$/);
  assert.is(quiet.stderr, '', '-q prints the image id and nothing else');
});

it('images --filter (dangling, reference, label, before, since), --no-trunc and --digests', async () => {
  const a = ctx('LABEL team=a\n');
  const b = ctx('LABEL team=b tier=web\n');
  for (const [t, d] of [['flt/a:1', a], ['flt/b:1', b]] as const) assert.is((await cli(['-q', '-t', t, d], { root })).code, 0);
  const ls = async (...args: string[]) => {
    const r = await cli(['images', '--format', '{{.Repository}}:{{.Tag}}', ...args], { root });
    assert.is(r.code, 0, r.stderr);
    return r.stdout.split('\n').filter(Boolean).sort();
  };
  assert.equal(await ls('--filter', 'reference=flt/*'), ['flt/a:1', 'flt/b:1']);
  assert.equal(await ls('-f', 'reference=flt/*', '-f', 'label=team=b'), ['flt/b:1']);
  assert.equal(await ls('--filter', 'label=tier', '--filter', 'reference=flt/*'), ['flt/b:1']);
  assert.equal(await ls('--filter', 'reference=flt/*', '--filter', 'since=flt/a:1'), ['flt/b:1']);
  assert.equal(await ls('--filter', 'reference=flt/*', '--filter', 'before=flt/b:1'), ['flt/a:1']);
  assert.equal(await ls('--filter', 'dangling=true', '--filter', 'reference=flt/*'), []);
  const full = await cli(['images', '-q', '--no-trunc', '--filter', 'reference=flt/a'], { root });
  assert.match(full.stdout, /^sha256:[a-f0-9]{64}\n$/);
  const dig = await cli(['images', '--digests', '--filter', 'reference=flt/a'], { root });
  assert.match(dig.stdout, /^REPOSITORY +TAG +DIGEST +IMAGE ID/);
  assert.match(dig.stdout, /flt\/a +1 +sha256:[a-f0-9]{64} +[a-f0-9]{12} /);
  const bad = await cli(['images', '--filter', 'colour=red'], { root });
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /--filter colour=red: use dangling=…, reference=…, label=…, before=…, since=…/);
});

it('inspect --size: what a container wrote (SizeRw) and that plus its image (SizeRootFs)', async () => {
  const d = ctx('');
  assert.is((await cli(['-q', '-t', 'sized', d], { root })).code, 0);
  const r = await cli(['run', '--name', 'sized-ctr', 'sized', 'sh', '-c', 'head -c 300000 /dev/zero > /big'], { root });
  assert.is(r.code, 0, r.stderr);
  try {
    const [c] = JSON.parse((await cli(['inspect', '--size', 'sized-ctr'], { root })).stdout) as { SizeRw: number; SizeRootFs: number }[];
    assert.ok(c!.SizeRw >= 300000 && c!.SizeRw < 400000, `SizeRw ${c!.SizeRw}`);
    const [img] = JSON.parse((await cli(['inspect', 'sized'], { root })).stdout) as { Size: number }[];
    assert.ok(c!.SizeRootFs > c!.SizeRw + 100000, `SizeRootFs ${c!.SizeRootFs} adds the image (${img!.Size})`);
    assert.match((await cli(['inspect', '-s', '-f', '{{.SizeRw}}', 'sized-ctr'], { root })).stdout, /^\d{6}\n$/);
    const plain = JSON.parse((await cli(['inspect', 'sized-ctr'], { root })).stdout) as Record<string, unknown>[];
    assert.not.ok('SizeRw' in plain[0]!, 'only with --size, as Docker');
  } finally {
    await cli(['rm', 'sized-ctr'], { root });
  }
});

it('--format on images, ps, history and inspect (Go templates, table, json)', async () => {
  const d = ctx('LABEL team=core\nCMD ["true"]\n');
  const id = (await cli(['-q', '-t', 'fmt:1', d], { root })).stdout.trim();
  let r = await cli(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'], { root });
  assert.match(r.stdout, new RegExp(`^fmt:1 ${id.slice(7, 19)}$`, 'm'));
  r = await cli(['images', '--format', 'table {{.Repository}}\\t{{.Size}}'], { root });
  assert.match(r.stdout, /^REPOSITORY\s+SIZE\n/);
  r = await cli(['inspect', '-f', '{{.Config.Labels.team}} {{json .RepoTags}}', 'fmt:1'], { root });
  assert.is(r.stdout, 'core ["fmt:1"]\n');
  r = await cli(['history', '--format', '{{.CreatedBy}}', 'fmt:1'], { root });
  assert.match(r.stdout, /^CMD \["true"\]\n/);
  r = await cli(['ps', '-a', '--format', '{{json .}}'], { root });
  assert.is(r.code, 0, r.stderr);
  r = await cli(['images', '--format', '{{.Nope}}'], { root });
  assert.is(r.code, 2);
  assert.match(r.stderr, /can.t evaluate field Nope in \. \(fields here: Repository, Tag, ID/);
});

it('a read-only store: reading commands work, writing ones say the store is read-only', async () => {
  const r = await cli(['images'], { root });
  assert.is(r.code, 0);
  const ro = tmpdir('tsb-ro-mnt-');
  assert.is(spawnSync('sh', ['-c', `mount --bind ${root} ${ro} && mount -o remount,bind,ro ${ro}`]).status, 0);
  try {
    for (const args of [['images'], ['cache', 'ls'], ['ps', '-a'], ['volume', 'ls'], ['network', 'ls'], ['builds', 'ls'], ['system', 'df']]) {
      const x = await cli(args, { root: ro });
      assert.is(x.code, 0, `${args.join(' ')}: ${x.stderr}`);
    }
    const w = await cli(['volume', 'create', 'nope'], { root: ro });
    assert.is.not(w.code, 0);
    assert.match(w.stderr, /read-only filesystem: reading commands .* work on a read-only store, this one writes; give a writable store with --root/);
  } finally {
    spawnSync('umount', [ro]);
    fs.rmdirSync(ro);
  }
});

test.run();
