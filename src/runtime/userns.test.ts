import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseSubIds, planIdMaps, unshareCause } from './userns.js';

test('subordinate ranges are found by name or by uid; malformed and empty lines are skipped', () => {
  const text = '# comment\nalice:100000:65536\n\nbob:x:1\n1005:300000:1000\nbob:200000:65536\nzero:400000:0\n';
  assert.equal(parseSubIds(text, 'alice', 1001), { start: 100000, count: 65536 });
  assert.equal(parseSubIds(text, 'bob', 1004), { start: 200000, count: 65536 });
  assert.equal(parseSubIds(text, 'carol', 1005), { start: 300000, count: 1000 });
  assert.is(parseSubIds(text, 'zero', 1006), undefined);
  assert.is(parseSubIds(text, 'dave', 1007), undefined);
});

test('id maps: root is the user, 1..N the range (as podman); else the user alone, with the reason', () => {
  const sub = 'u:100000:65536\n';
  assert.equal(planIdMaps({ uid: 1000, gid: 1000, user: 'u', subuid: sub, subgid: sub, newuidmap: true }), {
    kind: 'subids', uid: [0, 1000, 1, 1, 100000, 65536], gid: [0, 1000, 1, 1, 100000, 65536],
  });
  const none = planIdMaps({ uid: 1000, gid: 1001, user: 'u', subuid: '', subgid: sub, newuidmap: true });
  assert.equal([none.kind, none.uid, none.gid], ['single', [0, 1000, 1], [0, 1001, 1]]);
  assert.match(none.reason!, /no range for u in \/etc\/subuid/);
  assert.match(planIdMaps({ uid: 1000, gid: 1000, user: 'u', subuid: sub, newuidmap: true }).reason!, /\/etc\/subgid/);
  assert.match(planIdMaps({ uid: 1000, gid: 1000, user: 'u', subuid: sub, subgid: sub, newuidmap: false }).reason!, /apt-get install uidmap/);
});

test('unshare failures name the kernel setting behind them; other failures keep the helper\'s words', () => {
  const f = (errno: number, op = 'unshare') => ({ stage: 'userns', op, path: '', errno, message: 'x' });
  assert.match(unshareCause(f(28)), /ENOSPC: user.max_user_namespaces is 0 or used up/);
  assert.match(unshareCause(f(1)), /EPERM: kernel.unprivileged_userns_clone=0, an AppArmor restriction, or a seccomp profile/);
  assert.match(unshareCause(f(13)), /EACCES/);
  assert.match(unshareCause(f(1, 'setresuid')), /sandbox setup failed: userns: setresuid/);
});

test.run();
