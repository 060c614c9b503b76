/** `build --build-context NAME=DIR|docker-image://IMAGE`: BuildKit's named contexts, end to end. */
import fs from 'node:fs';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { cli, e2eHarness, tmpdir } from '../testutil/index.js';

const { it, root, dirs, ctx, test } = e2eHarness('buildctx');

/** A directory of its own for a named context: two files, one ignored by its .dockerignore. */
function extraDir(): string {
  const d = tmpdir('tsb-extra-');
  dirs.push(d);
  fs.mkdirSync(path.join(d, 'sub'));
  fs.writeFileSync(path.join(d, 'e.txt'), 'extra\n');
  fs.writeFileSync(path.join(d, 'sub/s.txt'), 's\n');
  fs.writeFileSync(path.join(d, 'secret.txt'), 'not for the image\n');
  fs.writeFileSync(path.join(d, '.dockerignore'), 'secret.txt\n');
  return d;
}

const show = async (image: string, script: string) => {
  const r = await cli(['run', '--rm', '--network', 'none', image, 'sh', '-c', script], { root });
  assert.is(r.code, 0, r.stderr);
  return r.stdout;
};

it('a local directory: COPY --from, RUN --mount from= and FROM NAME read it, with its own .dockerignore; rebuilt when it changes', async () => {
  const extra = extraDir();
  const d = ctx(
    'FROM base AS tools\nRUN echo original > /which\n' +
      'FROM extra AS files\n' +
      'FROM tools\nCOPY --from=extra / /extra/\nCOPY --from=files /sub /files/\n' +
      'RUN --mount=from=extra,target=/x cat /x/e.txt > /mounted\n',
  );
  const args = ['build', '-q', '-t', 'bc-local', '--build-context', `extra=${extra}`, d];
  const first = await cli(args, { root });
  assert.is(first.code, 0, first.stderr);
  assert.is(await show('bc-local', 'ls -A /extra /files; cat /mounted /which'), '/extra:\n.dockerignore\ne.txt\nsub\n\n/files:\ns.txt\nextra\noriginal\n');
  const again = await cli(args, { root });
  assert.is(again.stdout, first.stdout, 'unchanged: the same image');
  fs.writeFileSync(path.join(extra, 'e.txt'), 'changed\n');
  const changed = await cli([...args.slice(0, 1), '--progress', 'plain', ...args.slice(2)], { root });
  assert.is(changed.code, 0, changed.stderr);
  assert.match(changed.stderr, /COPY --from=extra \/ \/extra\/\n#\d+ cache miss/, 'the step reading it runs again');
  assert.is(await show('bc-local', 'cat /extra/e.txt /mounted'), 'changed\nchanged\n');
  const v = await cli(['verify', 'bc-local'], { root });
  assert.is(v.code, 0, `verify rebuilds with the same named context: ${v.stdout}${v.stderr}`);
});

it('docker-image://IMAGE replaces a stage or an image of that name; the stage it replaces never runs', async () => {
  const other = await cli(['build', '-q', '-t', 'bc-other', ctx('RUN echo replaced > /which\n')], { root });
  assert.is(other.code, 0, other.stderr);
  const d = ctx('FROM base AS tools\nRUN echo original > /which\nFROM tools\nRUN cat /which > /seen\n');
  const r = await cli(['build', '--progress', 'plain', '-t', 'bc-image', '--build-context', 'tools=docker-image://bc-other', d], { root });
  assert.is(r.code, 0, r.stderr);
  assert.not.match(r.stderr, /echo original/, 'the replaced stage is not built');
  assert.is(await show('bc-image', 'cat /seen'), 'replaced\n');
  // An image name: FROM bc-other:latest means the image the context names.
  const byImage = await cli(['build', '-q', '-t', 'bc-image2', '--build-context', 'bc-other=docker-image://bc-local', ctx('FROM bc-other:latest\nRUN cat /which > /seen\n')], { root });
  assert.is(byImage.code, 0, byImage.stderr);
  assert.is(await show('bc-image2', 'cat /seen'), 'original\n');
});

it('bad values are refused before anything runs, naming the flag and what to do', async () => {
  const d = ctx('');
  const cases: [string, RegExp][] = [
    ['noequals', /--build-context noequals: use NAME=DIRECTORY or NAME=docker-image:\/\/IMAGE/],
    ['x=/nonexistent/dir', /\/nonexistent\/dir does not exist; give an existing directory/],
    [`x=${path.join(d, 'Dockerfile')}`, /is not a directory/],
    ['x=https://example.invalid/repo.git', /remote \(git or HTTP\) contexts are not supported yet; clone or download it/],
    ['x=oci-layout:///tmp/layout', /OCI layout contexts are not supported yet; load the layout/],
    ['x=target:other', /build that image first/],
    ['x=docker-image://', /name the image after docker-image:\/\//],
  ];
  for (const [value, message] of cases) {
    const r = await cli(['build', '-q', '--build-context', value, d], { root });
    assert.is(r.code, 2, `${value}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
  const twice = await cli(['build', '-q', '--build-context', `a=${d}`, '--build-context', `A=${d}`, d], { root });
  assert.match(twice.stderr, /A is given twice/);
});

test.run();
