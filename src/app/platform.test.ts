import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkPlatform, emulationFor } from './platform.js';
import { formatPlatform, hostPlatform } from '../image/index.js';

test('the host platform is fine; another is refused saying whether emulation is there; multi-platform refused', () => {
  const host = formatPlatform(hostPlatform());
  checkPlatform(host);
  checkPlatform(`${host},${host}`);
  checkPlatform(undefined);
  const other = hostPlatform().architecture === 'arm64' ? 'linux/amd64' : 'linux/arm64';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsb-binfmt-'));
  try {
    assert.throws(() => checkPlatform(other, true, dir), /this machine cannot run \w+ programs \(no binfmt_misc handler for qemu-\w+ is registered\)/);
    const arch = other.split('/')[1]!;
    fs.writeFileSync(path.join(dir, `qemu-${arch === 'arm64' ? 'aarch64' : 'x86_64'}`), 'enabled\ninterpreter /usr/bin/qemu\n');
    assert.ok(emulationFor(arch, dir));
    assert.throws(() => checkPlatform(other, true, dir), /emulation for \w+ is registered here \(binfmt_misc\), but tsbuild does not build for other platforms yet/);
    assert.throws(() => checkPlatform(`${host},${other}`, true, dir), /multi-platform builds are not supported yet/);
    assert.throws(() => checkPlatform('linux', true, dir), /invalid platform/);
    checkPlatform(other, false, dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
