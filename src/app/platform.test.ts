import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkPlatforms, runPlatform } from './platform.js';
import { formatPlatform, hostPlatform, type ImageConfig } from '../image/index.js';

const cfg = (architecture: string): ImageConfig => ({ architecture, os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [] }, history: [] });

const host = formatPlatform(hostPlatform());
const other = hostPlatform().architecture === 'arm64' ? 'linux/amd64' : 'linux/arm64';

function withEmpty(fn: (probe: { binfmtDir: string; searchDirs: string[] }) => void): void {
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'tsb-binfmt-'));
  try {
    fn({ binfmtDir: empty, searchDirs: [empty] });
  } finally {
    fs.rmSync(empty, { recursive: true, force: true });
  }
}

test('--platform: the host is fine; another needs emulation only with RUN steps; duplicates fold; bad values named', () => {
  withEmpty((probe) => {
    assert.equal(checkPlatforms(host, true, [], probe), [hostPlatform()]);
    assert.equal(checkPlatforms(`${host},${host}`, true, [], probe), [hostPlatform()]);
    assert.equal(checkPlatforms(undefined), []);
    assert.throws(() => checkPlatforms(other, true, [], probe), /needs qemu-user to run its programs.*install qemu-user-static/);
    assert.equal(checkPlatforms(other, false, [], probe), [{ os: 'linux', architecture: other.split('/')[1]! }]);
    assert.equal(checkPlatforms('linux/aarch64/v8', false, [], probe), [{ os: 'linux', architecture: 'arm64' }]);
    assert.equal(checkPlatforms('linux/arm', false, [], probe), [{ os: 'linux', architecture: 'arm', variant: 'v7' }]);
    assert.throws(() => checkPlatforms(`${host},${other}`, true, [], probe), /needs qemu-user/, 'every platform must be runnable');
    assert.throws(() => checkPlatforms('linux', true, [], probe), /--platform linux: invalid platform "linux": use os\/arch/);
    assert.throws(() => checkPlatforms('windows/amd64', false, [], probe), /tsbuild runs Linux images/);
  });
});

test('several platforms: an index, pushed, stored or in an OCI archive; a Docker archive or directory output is refused, saying what to do', () => {
  withEmpty((probe) => {
    assert.is(checkPlatforms(`${host},${other}`, false, [{ type: 'registry', push: true }], probe).length, 2);
    assert.throws(() => checkPlatforms(`${host},${other}`, false, [{ type: 'docker', push: false }], probe), /with --output type=docker: a docker output holds one platform's image; build it with one --platform, or write the multi-platform image as type=oci or push/);
    assert.throws(() => checkPlatforms(`${host},${other}`, false, [{ type: 'local', push: false }], probe), /type=local/);
    assert.is(checkPlatforms(`${host},${other}`, false, [{ type: 'oci', push: false }], probe).length, 2, 'an OCI archive holds an index');
    assert.is(checkPlatforms(other, false, [{ type: 'docker', push: false }], probe).length, 1);
  });
});

test("run: the host's images need nothing; another platform's runs with Docker's warning unless asked for; nothing to run it is an error", () => {
  withEmpty((probe) => {
    const warnings: string[] = [];
    assert.is(runPlatform(cfg(hostPlatform().architecture), undefined, (m) => warnings.push(m), probe), undefined);
    assert.throws(() => runPlatform(cfg(other.split('/')[1]!), undefined, (m) => warnings.push(m), probe), /install qemu-user-static/);
    assert.equal(warnings, []);
  });
  if (fs.existsSync('/usr/bin/qemu-aarch64-static') && other === 'linux/arm64') {
    const warnings: string[] = [];
    assert.is(runPlatform(cfg('arm64'), undefined, (m) => warnings.push(m)), 'linux/arm64');
    assert.match(warnings[0]!, /^WARNING: the image's platform \(linux\/arm64\) does not match/);
    assert.is(runPlatform(cfg('arm64'), 'linux/arm64', (m) => warnings.push(m)), 'linux/arm64');
    assert.is(warnings.length, 1);
  }
});

test.run();
