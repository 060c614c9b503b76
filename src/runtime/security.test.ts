/** Capabilities, devices and --security-opt as Docker defines them. */
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tmpdir } from '../testutil/index.js';
import { CAP_NAMES, DEFAULT_CAPS, DEFAULT_DEVICE_RULES, capName, deviceRules, hostCaps, parseDevice, parseSecurityOpts, resolveCaps, seccompProgram, SecurityError } from './security.js';

const all = new Set(CAP_NAMES);
const noResource = new Set(CAP_NAMES.filter((c) => c !== 'CAP_SYS_RESOURCE'));

test('capabilities: Docker\'s defaults, add and drop, ALL on either side', () => {
  assert.equal(resolveCaps({}, all), CAP_NAMES.filter((c) => DEFAULT_CAPS.includes(c)));
  assert.equal(resolveCaps({ capDrop: ['ALL'], capAdd: ['net_admin'] }, all), ['CAP_NET_ADMIN']);
  assert.ok(resolveCaps({ capAdd: ['SYS_PTRACE'] }, all).includes('CAP_SYS_PTRACE'));
  assert.not.ok(resolveCaps({ capDrop: ['chown', 'CAP_NET_RAW'] }, all).some((c) => c === 'CAP_CHOWN' || c === 'CAP_NET_RAW'));
  assert.is(resolveCaps({ capAdd: ['ALL'] }, noResource).length, CAP_NAMES.length - 1, 'ALL is what the host can grant');
  assert.is(capName('Cap_Sys_Admin', '--cap-add'), 'CAP_SYS_ADMIN');
  assert.throws(() => capName('FLY', '--cap-add'), (e: unknown) => e instanceof SecurityError && /--cap-add FLY: unknown capability/.test(e.message));
});

test('privileged: every capability the host can grant, and no more (root here may lack CAP_SYS_RESOURCE)', () => {
  const caps = resolveCaps({ privileged: true }, noResource);
  assert.not.ok(caps.includes('CAP_SYS_RESOURCE'));
  assert.is(caps.length, CAP_NAMES.length - 1);
  assert.throws(() => resolveCaps({ capAdd: ['SYS_RESOURCE'] }, noResource), /this host cannot grant it/);
  const d = tmpdir('tsb-caps-');
  try {
    fs.writeFileSync(path.join(d, 'status'), 'Name:\tx\nCapBnd:\t000001fffeffffff\n');
    assert.not.ok(hostCaps(path.join(d, 'status')).has('CAP_SYS_RESOURCE'), 'bit 24 is clear in 1fffeffffff');
    assert.is(hostCaps(path.join(d, 'status')).size, 40);
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
  assert.is(seccompProgram({ privileged: true }, caps), undefined, 'no seccomp when privileged');
  assert.is(seccompProgram({ seccomp: 'unconfined' }, caps), undefined);
  assert.ok(seccompProgram({}, DEFAULT_CAPS)!.length > 100);
});

test('devices: --device parsing and the devices-cgroup policy', () => {
  const d = parseDevice('/dev/null:/dev/mynull:rw');
  assert.equal({ ...d }, { hostPath: '/dev/null', containerPath: '/dev/mynull', permissions: 'rw', type: 'c', major: 1, minor: 3 });
  assert.is(parseDevice('/dev/zero').containerPath, '/dev/zero');
  assert.throws(() => parseDevice('/dev/nope'), /does not exist on this host/);
  assert.throws(() => parseDevice('/etc/passwd'), /is not a device node/);
  assert.throws(() => parseDevice('dev/null'), /paths must be absolute/);
  assert.equal(deviceRules({ privileged: true }), [{ type: 'a', major: '*', minor: '*', access: 'rwm' }]);
  const rules = deviceRules({ devices: [parseDevice('/dev/zero:/dev/z:r')] });
  assert.equal(rules.slice(0, DEFAULT_DEVICE_RULES.length), DEFAULT_DEVICE_RULES);
  assert.equal(rules.at(-1), { type: 'c', major: 1, minor: 5, access: 'r' });
  assert.not.ok(DEFAULT_DEVICE_RULES.some((r) => r.type === 'b' && r.access.includes('r')), 'no block device is readable by default');
});

test('--security-opt: seccomp and no-new-privileges; errors name the option', () => {
  const p = { defaultAction: 'SCMP_ACT_ALLOW' };
  assert.equal(parseSecurityOpts(['no-new-privileges'], () => p), { noNewPrivileges: true });
  assert.equal(parseSecurityOpts(['no-new-privileges=false', 'seccomp=unconfined'], () => p), { noNewPrivileges: false, seccomp: 'unconfined' });
  assert.equal(parseSecurityOpts(['seccomp=/x.json'], () => p), { seccomp: p });
  assert.equal(parseSecurityOpts(['apparmor=unconfined'], () => p), {});
  assert.throws(() => parseSecurityOpts(['no-new-privileges=maybe'], () => p), /use no-new-privileges, no-new-privileges=true or =false/);
  assert.throws(() => parseSecurityOpts(['selinux=x'], () => p), /known options are/);
});

test('compiled seccomp programs are kept by what they depend on, and a damaged cache entry is recompiled', () => {
  const d = tmpdir('tsb-seccache-');
  try {
    const a = seccompProgram({}, DEFAULT_CAPS, d)!;
    const files = fs.readdirSync(d);
    assert.is(files.length, 1);
    assert.equal(seccompProgram({}, DEFAULT_CAPS, d), a, 'the same program from the cache');
    const admin = seccompProgram({}, [...DEFAULT_CAPS, 'CAP_SYS_ADMIN'], d)!;
    assert.is(fs.readdirSync(d).length, 2, 'other capabilities, another program');
    assert.not.equal(admin, a);
    fs.writeFileSync(path.join(d, files[0]!), '[[1,2]]');
    assert.equal(seccompProgram({}, DEFAULT_CAPS, d), a, 'a damaged entry is compiled again');
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test.run();
