/** The same Dockerfile on every available snapshotter gives the same image digest, and runs. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cli, e2eHarness, makeBtrfs, programUnavailable, removeStore, sandboxUnavailable } from '../testutil/index.js';
import { openSnapshotter, removeAllSnapshots } from '../snapshotter/index.js';

const { it, itUnless, root, ctx } = e2eHarness('snap');
// A loop-mounted btrfs for the btrfs part, made once; its reason is the skip's when it cannot be made.
const fsys = sandboxUnavailable() ? undefined : makeBtrfs();
const btrfsWhy = fsys && 'unavailable' in fsys ? fsys.unavailable : undefined;
test.after(() => {
  if (fsys && !('unavailable' in fsys)) fsys.dispose();
});
let shared: { d: string; id: string } | undefined;
const fuseWhy = programUnavailable('fuse-overlayfs', ['--version'], 'fuse-overlayfs');

it('overlayfs and native build identical images (layers and digest) and both run them', async () => {
  const d = ctx(
    'RUN mkdir -p /data/keep && echo a > /data/keep/a && echo b > /data/gone && ln -s keep/a /data/link\n' +
      'FROM base AS mid\nRUN rm /data/gone && echo c >> /data/keep/a && chmod 0700 /data/keep\nCOPY one.txt /data/one\nWORKDIR /w\n' +
      'FROM mid AS final\nCOPY --from=base /data/keep/a /copied\nENV X=1\nCMD ["sh", "-c", "cat /data/keep/a /data/one /copied; ls /data"]\n',
    { 'one.txt': '1\n' },
  );
  const ids: string[] = [];
  for (const driver of ['overlayfs', 'native', ...(fuseWhy ? [] : ['fuse-overlayfs'])]) {
    const r = await cli(['-q', '--snapshotter', driver, '-t', `snap-${driver}`, d], { root });
    assert.is(r.code, 0, `${driver}: ${r.stderr}`);
    ids.push(r.stdout.trim());
    const out = await cli(['run', '--rm', '--snapshotter', driver, `snap-${driver}`], { root });
    assert.is(out.stdout, 'a\nc\n1\na\nkeep\nlink\none\n', `${driver} runs the image`);
  }
  for (const id of ids) assert.is(id, ids[0], 'the same image id on every driver');
  shared = { d, id: ids[0]! };

  const bad = await cli(['--snapshotter', 'ceph', d], { root });
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /unknown snapshotter "ceph": this build supports overlayfs, fuse-overlayfs, native, btrfs, zfs/);
  const nozfs = await cli(['--snapshotter', 'zfs', d], { root });
  assert.is(nozfs.code, 1);
  assert.match(nozfs.stderr, /zfs/, 'zfs without zfs is a clear error');
});

it('a COPY into directories it makes over lower layers (overlay writes those straight into its upper directory) gives native\'s image id', async () => {
  const d = ctx(
    'RUN mkdir -p /app/old /hidden/x /g && echo lower > /app/old/f && echo h > /hidden/x/y && chown 0:7 /g && chmod 2775 /g\n' +
      'FROM base AS t\nRUN rm -rf /hidden\n' +
      // over a whiteout (overlay makes the directory opaque), into a lower directory, into a set-group-id
      // one, with --chown, merged into a lower directory, and a second source into what the first made
      'COPY tree /hidden\nCOPY tree /app/\nCOPY tree /g/\nCOPY --chown=5:6 tree /own/\nCOPY tree2/old/ /app/old/\nCOPY tree tree3 /two/\n' +
      'CMD ["sh", "-c", "ls -a /hidden; cat /app/old/f /app/old/n.txt /app/d/e/f.txt /app/d/link /two/d/e/g.txt; stat -c \'%n %u:%g %a\' /g/d /g/d/e /g/d/e/f.txt /own/d/e/f.txt /own/d/link; wc -c < /app/d/big; ls /app/d/e"]\n',
    { 'tree/d/e/f.txt': 'f\n', 'tree/d/big': 'b'.repeat(300 * 1024), 'tree2/old/n.txt': 'n\n', 'tree3/d/e/g.txt': 'g\n' },
  );
  fs.symlinkSync('e/f.txt', path.join(d, 'tree/d/link'));
  // A name that is not UTF-8 goes as bytes (busybox's ls shows its byte as ?).
  fs.writeFileSync(Buffer.from(path.join(d, 'tree/d/e/') + 'x\xff', 'latin1'), 'odd\n');
  assert.is(spawnSync('mkfifo', [path.join(d, 'tree/d/e/fifo')]).status, 0);
  const ids: string[] = [];
  for (const driver of ['overlayfs', 'native']) {
    const r = await cli(['-q', '--snapshotter', driver, '-t', `below-${driver}`, d], { root });
    assert.is(r.code, 0, `${driver}: ${r.stderr}`);
    ids.push(r.stdout.trim());
    const out = await cli(['run', '--rm', '--snapshotter', driver, `below-${driver}`], { root });
    assert.is(
      out.stdout,
      '.\n..\nd\nlower\nn\nf\nf\ng\n/g/d 0:0 755\n/g/d/e 0:0 755\n/g/d/e/f.txt 0:0 644\n/own/d/e/f.txt 5:6 644\n/own/d/link 5:6 777\n307200\nf.txt\nfifo\nx?\n',
      `${driver}: ${out.stderr}`,
    );
  }
  assert.is(ids[1], ids[0], 'overlayfs gives the same image id as native');
});

itUnless(btrfsWhy, 'btrfs builds the same image id as overlayfs and native, and runs it', async () => {
  assert.ok(shared, 'the overlayfs/native test ran first');
  const { d, id } = shared;
  const broot = path.join((fsys as { dir: string }).dir, 'store');
  try {
    const r = await cli(['-q', '--snapshotter', 'btrfs', '-t', 'snap-btrfs', d], { root: broot });
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout.trim(), id, 'btrfs gives the same image id too');
    const out = await cli(['run', '--rm', '--snapshotter', 'btrfs', 'snap-btrfs'], { root: broot });
    assert.is(out.stdout, 'a\nc\n1\na\nkeep\nlink\none\n');
    assert.is((await cli(['rmi', 'snap-btrfs'], { root: broot })).code, 0);
  } finally {
    // subvolumes are removed by the driver; what is left is plain files
    try {
      await removeAllSnapshots(openSnapshotter(broot, 'btrfs'));
    } catch {
      // the store may not have been created
    }
    removeStore(broot);
  }
});

/** A static helper for what busybox cannot do in a RUN: set and remove xattrs, leave a socket. */
const XA_C = `#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/xattr.h>
int main(int c, char **v) {
  if (c == 5 && !strcmp(v[1], "set")) return lsetxattr(v[2], v[3], v[4], strlen(v[4]), 0) ? 1 : 0;
  if (c == 4 && !strcmp(v[1], "rm")) return lremovexattr(v[2], v[3]) ? 1 : 0;
  if (c == 3 && !strcmp(v[1], "sock")) {
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    strncpy(a.sun_path, v[2], sizeof a.sun_path - 1);
    return bind(socket(AF_UNIX, SOCK_STREAM, 0), (struct sockaddr *)&a, sizeof a) ? 1 : 0;
  }
  return 2;
}
`;
const long = (c: string, n: number) => `$(printf '${c}%.0s' $(seq 1 ${n}))`;
// Hard links, chmod/chown-only changes, deleted files and directories, an opaque directory, a socket
// and a FIFO, xattrs set and removed, a sparse file, names over 100 bytes and a name that is not UTF-8,
// in a base that has /etc (the runtime's mount stubs for /etc/hosts and friends come and go there).
const BATTERY =
  'COPY xa /bin/xa\n' +
  `RUN mkdir -p /etc /d/sub /gone/deep /opq/x /same/z && echo a > /d/f && ln /d/f /d/g && echo b > /d/sub/h && echo c > /gone/deep/i && echo o > /opq/x/y && echo p > /opq/keep && echo u > /same/z/u && xa set /d/f user.k v1 && dd if=/dev/zero of=/sparse bs=1 count=0 seek=3M 2>/dev/null && echo s | dd of=/sparse bs=1 seek=1M conv=notrunc 2>/dev/null && touch "/$(printf 'n\\377m')" && touch /${long('L', 150)} && mkdir -p /${long('D', 120)}/${long('E', 120)}\n` +
  'FROM base AS t\n' +
  `RUN chmod 600 /d/g && chown 5:6 /d/sub/h && rm -rf /gone && rm -rf /opq && mkdir /opq && echo p > /opq/keep && mkfifo /d/fifo && xa sock /d/sock && xa set /d/sub user.q z && xa rm /d/f user.k && echo more >> "/$(printf 'n\\377m')" && touch /${long('D', 120)}/${long('E', 120)}/${long('F', 120)} && echo t >> /sparse\n` +
  'RUN ln /sparse /sparse2 && chmod 700 /same && touch /same/z\n';

let xaBin: Buffer | undefined;
const xaWhy = sandboxUnavailable() ? undefined : (() => {
  const dir = fs.mkdtempSync('/tmp/tsb-xa-');
  fs.writeFileSync(path.join(dir, 'xa.c'), XA_C);
  const r = spawnSync('gcc', ['-static', '-O2', '-o', path.join(dir, 'xa'), path.join(dir, 'xa.c')], { encoding: 'utf8' });
  if (r.status === 0) xaBin = fs.readFileSync(path.join(dir, 'xa'));
  fs.rmSync(dir, { recursive: true, force: true });
  return r.status === 0 ? undefined : `a static C program cannot be built here (apt-get install -y gcc libc6-dev): ${(r.stderr ?? String(r.error)).trim()}`;
})();

itUnless(xaWhy, 'one Dockerfile of hard links, deletions, opaque dirs, xattrs, sparse files and odd names gives one image id on every driver', async () => {
  const d = ctx(BATTERY);
  fs.writeFileSync(path.join(d, 'xa'), xaBin!, { mode: 0o755 });
  const ids: Record<string, string> = {};
  const broot = fsys && !('unavailable' in fsys) ? path.join(fsys.dir, 'battery') : undefined;
  const drivers: [string, string][] = [['overlayfs', root], ['native', root], ...(fuseWhy ? [] : [['fuse-overlayfs', root] as [string, string]]), ...(broot ? [['btrfs', broot] as [string, string]] : [])];
  try {
    for (const [driver, store] of drivers) {
      const r = await cli(['-q', '--snapshotter', driver, '-t', `bat-${driver}`, d], { root: store });
      assert.is(r.code, 0, `${driver}: ${r.stderr}`);
      ids[driver] = r.stdout.trim();
      // What every driver's image holds: the chmod reached both names of the link, the deletions and the
      // opaque directory's old entry are gone, the xattr removal and the odd names are kept.
      const out = await cli(['run', '--rm', '--snapshotter', driver, `bat-${driver}`, 'sh', '-c', `stat -c '%a %h' /d/f /d/g; [ "$(stat -c %i /d/f)" = "$(stat -c %i /d/g)" ] && echo linked; ls /opq; [ -e /gone ] || echo no-gone; stat -c '%u:%g' /d/sub/h; cat "/$(printf 'n\\377m')"; ls /d; ls -d /${long('D', 120)}/${long('E', 120)}/F* | wc -c; wc -c < /sparse2`], { root: store });
      // (the socket stays in the snapshot, as in BuildKit's; tar cannot carry it, so it is not in the layer)
      assert.is(out.stdout, `600 2\n600 2\nlinked\nkeep\nno-gone\n5:6\nmore\nf\nfifo\ng\nsock\nsub\n${1 + 120 + 1 + 120 + 1 + 120 + 1}\n3145730\n`, `${driver}: ${out.stderr}`);
    }
  } finally {
    if (broot) {
      await removeAllSnapshots(openSnapshotter(broot, 'btrfs')).catch(() => undefined);
      removeStore(broot);
    }
  }
  for (const [driver] of drivers) assert.is(ids[driver], ids['overlayfs'], `${driver} gives overlayfs's image id`);
});

itUnless(fuseWhy, 'fuse-overlayfs: a detached container keeps its writes across stop and start; after kill -9 of its monitor the next command unmounts what it left', async () => {
  assert.ok(shared, 'the overlayfs/native test ran first');
  const fz = (args: string[]) => cli(['--snapshotter', 'fuse-overlayfs', ...args], { root });
  const fuseMounts = () => fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(' fuse.fuse-overlayfs ') && l.includes(root));
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  try {
    assert.is((await fz(['run', '-d', '--name', 'fz', 'snap-fuse-overlayfs', 'sh', '-c', 'echo hi >> /w.txt; exec sleep 600'])).code, 0);
    assert.is(fuseMounts().length, 1, 'the root is a fuse-overlayfs mount in the store');
    assert.is((await fz(['exec', 'fz', 'cat', '/w.txt'])).stdout, 'hi\n');
    assert.is((await fz(['stop', '-t', '0', 'fz'])).code, 0);
    assert.is(fuseMounts().length, 0, 'unmounted when the container stops');
    assert.is((await fz(['start', 'fz'])).code, 0);
    assert.is((await fz(['exec', 'fz', 'cat', '/w.txt'])).stdout, 'hi\nhi\n', 'the first run\'s write is kept');
    const pid = Number((await fz(['inspect', '--format', '{{.State.Pid}}', 'fz'])).stdout.trim());
    const mon = Number((await fz(['inspect', '--format', '{{.State.MonitorPid}}', 'fz'])).stdout.trim());
    process.kill(mon, 'SIGKILL');
    for (let i = 0; i < 200 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
    assert.not.ok(alive(pid), 'the container died with its monitor');
    assert.is(fuseMounts().length, 1, 'the dead monitor left its mount (its fuse-overlayfs still serves it)');
    assert.is((await fz(['ps', '-a'])).code, 0);
    assert.is(fuseMounts().length, 0, 'the next command unmounted it');
  } finally {
    await fz(['rm', '-f', 'fz']);
  }
  assert.is(fuseMounts().length, 0);
});

it('info shows the drivers; config.json picks the store-wide default snapshotter', async () => {
  const info = JSON.parse((await cli(['info', '--format', 'json'], { root })).stdout) as { snapshotter: string; drivers: Record<string, string> };
  assert.is(info.snapshotter, 'overlayfs');
  assert.is(info.drivers['overlayfs'], 'available');
  assert.match(info.drivers['zfs']!, /^unavailable: |available when/);
  const other = path.join(root, 'native-default');
  fs.mkdirSync(other, { recursive: true });
  fs.writeFileSync(path.join(other, 'config.json'), JSON.stringify({ snapshotter: 'native' }));
  const d = ctx('FROM base AS n\nRUN echo x > /x\n');
  const r = await cli(['-t', 'by-config', '--target', 'n', '--progress', 'plain', d], { root: other });
  assert.is(r.code, 0, r.stderr);
  assert.ok(fs.existsSync(path.join(other, 'snapshots/native/metadata.json')), 'built with the native driver');
  assert.is((await cli(['run', '--rm', 'by-config', 'cat', '/x'], { root: other })).stdout, 'x\n');
  assert.match((await cli(['info'], { root: other })).stdout, /Snapshotter: +native/);
});

test.run();
