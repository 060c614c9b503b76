import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkPlatform } from './platform.js';
import { formatPlatform, hostPlatform } from '../image/index.js';

test('--platform: the host is fine; another needs emulation only with RUN steps; two platforms refused; bad values named', () => {
  const host = formatPlatform(hostPlatform());
  assert.equal(checkPlatform(host), hostPlatform());
  assert.equal(checkPlatform(`${host},${host}`), hostPlatform());
  assert.is(checkPlatform(undefined), undefined);
  const other = hostPlatform().architecture === 'arm64' ? 'linux/amd64' : 'linux/arm64';
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'tsb-binfmt-'));
  const probe = { binfmtDir: empty, searchDirs: [empty] };
  try {
    assert.throws(() => checkPlatform(other, true, probe), /needs qemu-user to run its programs.*install qemu-user-static/);
    assert.equal(checkPlatform(other, false, probe), { os: 'linux', architecture: other.split('/')[1] });
    assert.equal(checkPlatform('linux/aarch64/v8', false, probe), { os: 'linux', architecture: 'arm64' });
    assert.equal(checkPlatform('linux/arm', false, probe), { os: 'linux', architecture: 'arm', variant: 'v7' });
    assert.throws(() => checkPlatform(`${host},${other}`, true, probe), /multi-platform builds \(an image index\) are not supported yet; build each platform on its own/);
    assert.throws(() => checkPlatform('linux', true, probe), /--platform linux: invalid platform "linux": use os\/arch/);
    assert.throws(() => checkPlatform('windows/amd64', false, probe), /tsbuild runs Linux images/);
  } finally {
    fs.rmSync(empty, { recursive: true, force: true });
  }
});

test.run();
