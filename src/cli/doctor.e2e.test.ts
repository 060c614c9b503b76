/**
 * `tsbuild doctor` (#21): damaged records, tables and blobs are named by the commands that meet them
 * and by `doctor`; `doctor` changes nothing; `doctor --repair` restores the mirrored tables, removes
 * what is derived, quarantines bad blobs, and the store builds and runs again afterwards.
 */
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { cli, e2eHarness, mountsUnder } from '../testutil/index.js';

const { it, root, ctx, test } = e2eHarness('doctor');
const env = { TSBUILD_PULL: 'never', TSBUILD_NETWORK: 'host' };
const run = (args: string[]) => cli(args, { root, env });

/** Every path under the store with its size and mtime: what a read-only check must leave as it was. */
function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (p.startsWith(path.join(root, 'snapshots')) && p.includes('/snapshots/overlayfs/snapshots/')) continue;
      const st = fs.lstatSync(p);
      out.push(`${path.relative(root, p)} ${st.size} ${st.mtimeMs}`);
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

function flipByte(file: string): void {
  const b = fs.readFileSync(file);
  b[b.length >> 1]! ^= 0x20;
  fs.writeFileSync(file, b);
}

let context = '';
test.before(() => {
  context = ctx('FROM base\nRUN echo doctor > /greeting\n');
});

it('a damaged name table: commands name it and doctor; doctor --repair restores it from its mirror', async () => {
  const b = await run(['-q', '-t', 'dr1', context]);
  assert.is(b.code, 0, b.stderr);
  const index = path.join(root, 'index.json');
  assert.ok(fs.existsSync(`${index}.bak`), 'the name table is mirrored');
  const whole = fs.readFileSync(index);
  fs.writeFileSync(index, whole.subarray(0, whole.length >> 1));

  const ls = await run(['images']);
  assert.is(ls.code, 1);
  assert.match(ls.stderr, new RegExp(`${index.replace(/[/.]/g, '\\$&')} is not valid JSON .*tsbuild doctor --repair`));
  assert.not.match(ls.stderr, /\n\s+at /, 'no stack trace');

  const before = listing(root);
  const check = await run(['doctor']);
  assert.is(check.code, 1, check.stdout + check.stderr);
  assert.match(check.stdout, /damaged +.*index\.json: not a valid image index/);
  assert.equal(listing(root), before, 'doctor without --repair changes nothing');

  const fix = await run(['doctor', '--repair']);
  assert.is(fix.code, 0, fix.stdout + fix.stderr);
  assert.match(fix.stdout, /repaired +.*index\.json.*\n.*restored from index\.json\.bak/);
  const r = await run(['run', '--rm', 'dr1', 'cat', '/greeting']);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, 'doctor\n');
  const again = await run(['doctor']);
  assert.is(again.code, 0, again.stdout);
  assert.match(again.stdout, /store is consistent: checked \d+ records, \d+ blobs, [1-9]\d* images, [1-9]\d* snapshots/);
});

it('everything damaged at once: repair keeps what is good, says what is lost, and the store builds and runs again', async () => {
  const made = await run(['run', '--name', 'doc-ctr', 'dr1', 'true']);
  assert.is(made.code, 0, made.stderr);
  const index = path.join(root, 'index.json');
  const meta = path.join(root, 'snapshots/overlayfs/metadata.json');
  for (const f of [index, `${index}.bak`, meta, `${meta}.bak`]) fs.writeFileSync(f, '{"trunc');
  const records = path.join(root, 'cache/records');
  const record = path.join(records, fs.readdirSync(records)[0]!);
  fs.writeFileSync(record, '{"key": ');
  const ctrDir = path.join(root, 'containers', fs.readdirSync(path.join(root, 'containers')).find((e) => /^[a-f0-9]{64}$/.test(e))!);
  fs.writeFileSync(path.join(ctrDir, 'state.json'), '{');
  const blobs = path.join(root, 'blobs/sha256');
  const layer = fs.readdirSync(blobs).map((h) => path.join(blobs, h)).sort((a, b) => fs.statSync(b).size - fs.statSync(a).size)[0]!;
  flipByte(layer);

  const check = await run(['doctor']);
  assert.is(check.code, 1);
  for (const what of [/index\.json: not a valid image index/, /metadata\.json: not a valid snapshot table/, /cache\/records\/.*: not valid JSON/, /state\.json: not valid JSON/, new RegExp(`${path.basename(layer)}: .*does not match its digest`)]) assert.match(check.stdout, what);

  const fix = await run(['doctor', '--repair']);
  assert.is(fix.code, 1, 'an image whose layer is gone cannot be repaired here: it is left, with what to do');
  assert.match(fix.stdout, /the names are lost; [1-9]\d* stored image\(s\) listed again without a name/);
  assert.match(fix.stdout, /started empty/);
  assert.match(fix.stdout, /moved to .*lost\+found/);
  assert.match(fix.stdout, /the container record was removed/);
  assert.match(fix.stdout, /damaged +image sha256:[a-f0-9]{12} \(unnamed\): 1 layer blob\(s\) missing.*\n.*pull or rebuild it/);
  assert.ok(fs.existsSync(path.join(root, 'lost+found', `sha256-${path.basename(layer)}`)), 'the bad blob is kept aside, not deleted');
  assert.not.ok(fs.existsSync(layer));

  const imgs = await run(['images']);
  assert.is(imgs.code, 0, imgs.stderr);
  assert.match(imgs.stdout, /<none> +<none>/, 'the image is still there, without its name');
  const ps = await run(['ps', '-a', '-q']);
  assert.is(ps.stdout.trim(), '', 'the damaged container record is gone');

  // The same build produces the quarantined layer again and names the image: everything works.
  const b = await run(['-q', '-t', 'dr1', context]);
  assert.is(b.code, 0, b.stderr);
  assert.ok(fs.existsSync(layer), 'the layer blob is stored again by the build that produces it');
  const r = await run(['run', '--rm', 'dr1', 'cat', '/greeting']);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, 'doctor\n');
  const again = await run(['doctor']);
  assert.is(again.code, 0, again.stdout + again.stderr);
  assert.equal(mountsUnder(root), []);
});

it('a damaged snapshot table with a good mirror: restored, and images run without being unpacked again', async () => {
  const meta = path.join(root, 'snapshots/overlayfs/metadata.json');
  const good = fs.readFileSync(meta);
  fs.writeFileSync(meta, good.subarray(0, 7));
  const fails = await run(['run', '--rm', 'dr1', 'true']);
  assert.is(fails.code, 125, 'a failure of tsbuild itself, as docker run reports one');
  assert.match(fails.stderr, /metadata\.json is not valid JSON .*tsbuild doctor --repair/);
  const fix = await run(['doctor', '--repair', '--quick']);
  assert.is(fix.code, 0, fix.stdout + fix.stderr);
  assert.match(fix.stdout, /restored from metadata\.json\.bak/);
  assert.match(fix.stdout, /checked \d+ records, [1-9]\d* images/, '--quick hashes no blob');
  assert.not.match(fix.stdout, /blobs/);
  assert.equal(JSON.parse(fs.readFileSync(meta, 'utf8')), JSON.parse(good.toString()), 'the table is what it was');
  const r = await run(['run', '--rm', 'dr1', 'cat', '/greeting']);
  assert.is(r.code, 0, r.stderr);
});

it('repair waits for no one: it refuses while another command holds the store, and says so', async () => {
  const stat = fs.readFileSync('/proc/self/stat', 'utf8');
  const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  const lease = path.join(root, 'leases', `${process.pid}-${start}-doctor`);
  fs.mkdirSync(path.dirname(lease), { recursive: true });
  fs.writeFileSync(lease, `${Date.now()}\n`);
  try {
    const r = await run(['doctor', '--repair', '--quick']);
    assert.is(r.code, 1);
    assert.match(r.stderr, /another tsbuild command is building or pulling into .*: run "tsbuild doctor --repair" when it has finished/);
    const check = await run(['doctor', '--quick']);
    assert.is(check.code, 0, `checking is fine meanwhile: ${check.stdout}${check.stderr}`);
  } finally {
    fs.rmSync(lease, { force: true });
  }
});

test.run();
