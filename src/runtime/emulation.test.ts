import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { emulationFor, emulationSummary, runsNatively } from './emulation.js';
import { hostPlatform } from '../image/index.js';

const other = hostPlatform().architecture === 'arm64' ? { os: 'linux', architecture: 'amd64' } : { os: 'linux', architecture: 'arm64' };
const qemu = other.architecture === 'arm64' ? 'aarch64' : 'x86_64';

function withDirs(fn: (binfmt: string, bin: string) => void): void {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tsb-emu-'));
  fs.mkdirSync(path.join(d, 'binfmt'));
  fs.mkdirSync(path.join(d, 'bin'));
  try {
    fn(path.join(d, 'binfmt'), path.join(d, 'bin'));
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
}

test('the host platform runs natively, and so does i386 on an x86-64 kernel', () => {
  assert.is(emulationFor(hostPlatform()), undefined);
  assert.ok(runsNatively(hostPlatform()));
  if (hostPlatform().architecture === 'amd64') assert.ok(runsNatively({ os: 'linux', architecture: '386' }));
  assert.not.ok(runsNatively(other));
});

test('nothing installed: an error saying what to install; an unknown architecture: an error naming it', () => {
  withDirs((binfmt, bin) => {
    assert.throws(() => emulationFor(other, { binfmtDir: binfmt, searchDirs: [bin] }), (e: Error & { code?: string }) => e.code === 'EMULATION_UNAVAILABLE' && /qemu-user-static \(Debian: apt-get install qemu-user-static\)/.test(e.message));
    assert.throws(() => emulationFor({ os: 'linux', architecture: 'sparc64' }, { binfmtDir: binfmt, searchDirs: [bin] }), /no qemu-user emulation is known for it/);
  });
});

test("the host's handler is used when it has the F flag; without F (the image would need the interpreter) our own is registered", () => {
  withDirs((binfmt, bin) => {
    fs.writeFileSync(path.join(binfmt, `qemu-${qemu}`), `enabled\ninterpreter /usr/bin/qemu-${qemu}-static\nflags: OCF\noffset 0\n`);
    const host = emulationFor(other, { binfmtDir: binfmt, searchDirs: [bin] })!;
    assert.equal(host.register, []);
    assert.match(host.via, `binfmt_misc handler qemu-${qemu}`);
    fs.writeFileSync(path.join(binfmt, `qemu-${qemu}`), `enabled\ninterpreter /usr/bin/qemu-${qemu}\nflags: P\noffset 0\n`);
    assert.throws(() => emulationFor(other, { binfmtDir: binfmt, searchDirs: [bin] }), /EMULATION|qemu-user-static/);
    fs.writeFileSync(path.join(bin, `qemu-${qemu}-static`), '#!/bin/sh\n', { mode: 0o755 });
    const own = emulationFor(other, { binfmtDir: binfmt, searchDirs: [bin] })!;
    assert.is(own.register.length, 1);
    // name, type M, offset, magic, mask, interpreter, flags: the kernel's register format
    const fields = own.register[0]!.split(':');
    assert.is(fields.length, 8);
    assert.is(fields[1], `tsbuild-${qemu}`);
    assert.is(fields[2], 'M');
    assert.is(fields[6], path.join(bin, `qemu-${qemu}-static`));
    assert.is(fields[7], 'FP');
    // magic and mask are the same length, ELF headers of 20 bytes
    assert.is(fields[4]!.split('\\x').length - 1, 20);
    assert.is(fields[5]!.split('\\x').length - 1, 20);
  });
});

test('info summary lists each known platform with how it runs or why it cannot', () => {
  withDirs((binfmt, bin) => {
    const s = emulationSummary({ binfmtDir: binfmt, searchDirs: [bin] });
    assert.ok(s.some((x) => x.via === 'native'));
    assert.ok(s.some((x) => x.platform === 'linux/arm/v7'));
    assert.ok(s.filter((x) => x.via !== 'native').every((x) => x.error));
  });
});

test.run();
