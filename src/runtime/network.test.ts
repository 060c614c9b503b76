import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { allocateIp, macFor, parseCidr, pickSubnet, inSubnet } from './ipam.js';
import { Networks, type Runner } from './network.js';
import { networkRules, tableRuleset } from './nft.js';

test('ipam: subnets, the lowest free address, MACs, a subnet no route uses', () => {
  assert.equal(parseCidr('10.89.3.7/16'), { base: parseCidr('10.89.0.0/16').base, bits: 16 });
  assert.is(allocateIp('10.89.0.0/16', '10.89.0.1', new Set(['10.89.0.2'])), '10.89.0.3');
  assert.is(allocateIp('10.89.0.0/30', '10.89.0.1', new Set()), '10.89.0.2');
  assert.throws(() => allocateIp('10.89.0.0/30', '10.89.0.1', new Set(['10.89.0.2'])), /no free address/);
  assert.is(macFor('10.89.0.2'), '02:42:0a:59:00:02');
  assert.ok(inSubnet('10.89.255.254', parseCidr('10.89.0.0/16')));
  assert.is(pickSubnet(['10.89.0.0/16', '10.90.0.0/16'], ['default', '10.89.5.0/24', '192.0.2.0/24']), '10.90.0.0/16');
  assert.throws(() => pickSubnet(['10.89.0.0/16'], ['10.0.0.0/8']), /already routed/);
  assert.throws(() => parseCidr('10.0.0.0/33'), /prefix/);
});

test('the nftables table DNATs published ports through maps; each network masquerades its subnet and is kept apart', () => {
  const t = tableRuleset();
  assert.match(t, /dnat ip to meta l4proto \. th dport map @ports/);
  assert.match(t, /ip saddr 127\.0\.0\.0\/8 oifname @bridges masquerade/);
  const n = { Id: 'f'.repeat(64), Bridge: 'tsb-x', Subnet: '10.89.0.0/16', Internal: false };
  assert.equal(networkRules(n), [
    ['forward', `iifname "tsb-x" oifname != "tsb-x" oifname @bridges drop comment "net:${'f'.repeat(12)}"`],
    ['postrouting', `ip saddr 10.89.0.0/16 oifname != "tsb-x" masquerade comment "net:${'f'.repeat(12)}"`],
  ]);
  const internal = networkRules({ ...n, Internal: true }).map(([, r]) => r).join('\n');
  assert.not.match(internal, /masquerade/);
  assert.match(internal, /iifname "tsb-x" oifname != "tsb-x" drop/);
});

test('attach/detach: commands in order, endpoints reclaimed when their owner is dead, bridge and table removed with the last', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsb-netunit-'));
  const calls: string[] = [];
  let bridge = false;
  const fake: Runner = async (cmd, args, input) => {
    const line = `${cmd} ${args.join(' ')}${input ? ` <<${input.trim().replace(/\n/g, '; ')}` : ''}`;
    calls.push(line);
    if (cmd === 'ip' && args[0] === '-4') return '10.89.0.0/16 dev x\n';
    if (cmd === 'ip' && args.includes('show')) {
      if (!bridge) throw new Error('no such device');
      return '';
    }
    if (cmd === 'nft' && args[0] === 'list') throw new Error('no table');
    if (input?.includes('type bridge')) bridge = true;
    return '';
  };
  const sysctls: string[] = [];
  try {
    const nets = new Networks(root, { exec: fake, sysctl: (k, v) => sysctls.push(`${k}=${v}`) });
    const att = await nets.attach('a'.repeat(64), { name: 'a', networks: [{ network: 'bridge' }], ports: [{ hostIp: '0.0.0.0', hostPort: 0, containerPort: 80, proto: 'tcp' }] });
    const a = att.endpoints[0]!.endpoint;
    assert.is(att.netns, `tsb-${'a'.repeat(12)}`);
    assert.is(a.ip, '10.90.0.2', 'the first subnet is routed already');
    assert.is(a.ports[0]!.hostPort > 0, true);
    assert.ok(calls.some((c) => c.startsWith('nft -f -')));
    assert.equal(sysctls, ['net.ipv4.ip_forward=1', `net.ipv4.conf.${nets.bridgeName}.route_localnet=1`]);
    assert.match(nets.bridgeName, /^tsbr[0-9a-f]{8}$/, 'a store other than the default has its own bridge');
    assert.match(nets.table, /^tsbuild_[0-9a-f]{8}$/);
    assert.is(new Networks('/var/lib/tsbuild').bridgeName, 'tsbuild0');
    assert.is(new Networks('/var/lib/tsbuild').table, 'tsbuild');
    assert.ok(calls.some((c) => c.includes(`add element ip ${nets.table} ports { tcp . ${a.ports[0]!.hostPort} : 10.90.0.2 . 80 }`)));
    // A second container: the next address; a dead owner's endpoint is reclaimed on the way.
    const state = JSON.parse(fs.readFileSync(path.join(root, 'networks/bridge.json'), 'utf8'));
    assert.is(state.Builtin, true);
    state.endpoints['a'.repeat(64)].owner = { pid: 2 ** 22 + 1, start: 1 };
    fs.writeFileSync(path.join(root, 'networks/bridge.json'), JSON.stringify(state));
    const b = (await nets.attach('b'.repeat(64), { name: 'b', networks: [{ network: 'bridge' }] })).endpoints[0]!.endpoint;
    assert.is(b.ip, '10.90.0.2', 'the dead endpoint gave its address back');
    assert.ok(calls.some((c) => c === `ip netns delete tsb-${'a'.repeat(12)}`));
    await nets.detach('b'.repeat(64));
    assert.ok(calls.includes(`nft delete table ip ${nets.table}`));
    assert.ok(calls.includes(`ip link delete ${nets.bridgeName}`));
    assert.not.ok(fs.existsSync(path.join(root, 'networks/bridge.json')));
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test.run();
