import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { dnsConfig, exposedPorts, networkConfig, networkMode, parsePublish, portLines } from './network.js';
import type { ContainerState } from '../runtime/index.js';

test('-p: the forms Docker takes', () => {
  assert.equal(parsePublish('8080:80'), [{ hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80, proto: 'tcp' }]);
  assert.equal(parsePublish('127.0.0.1:53:53/udp'), [{ hostIp: '127.0.0.1', hostPort: 53, containerPort: 53, proto: 'udp' }]);
  assert.equal(parsePublish('80'), [{ hostIp: '0.0.0.0', hostPort: 0, containerPort: 80, proto: 'tcp' }]);
  assert.equal(parsePublish('127.0.0.1::80'), [{ hostIp: '127.0.0.1', hostPort: 0, containerPort: 80, proto: 'tcp' }]);
  assert.equal(parsePublish('8000-8001:80-81').map((p) => `${p.hostPort}>${p.containerPort}`), ['8000>80', '8001>81']);
  assert.equal(parsePublish('9000-9009:80').map((p) => p.hostPort), [9000]);
  assert.throws(() => parsePublish('8000-8002:80-81'), /differ in length/);
  assert.equal(parsePublish('0:80')[0]!.hostPort, 0);
  assert.throws(() => parsePublish('80:0'), /invalid container port 0/);
  assert.throws(() => parsePublish('::1:80:80'), /use \[HOST_IP/);
  assert.throws(() => parsePublish('localhost:80:80'), /IPv4 address/);
  assert.throws(() => parsePublish('80/sctp'), /protocol sctp/);
});

test('-P, --network, --mac-address and their combinations', () => {
  assert.equal(exposedPorts({ '80/tcp': {}, '53/udp': {} }).map((p) => `${p.containerPort}/${p.proto}:${p.hostPort}`), ['80/tcp:0', '53/udp:0']);
  assert.is(networkMode(undefined), 'bridge');
  assert.is(networkMode('default'), 'bridge');
  assert.is(networkMode('container:web'), 'container:web');
  assert.is(networkMode('mynet'), 'mynet');
  assert.throws(() => networkMode('my net'), /the name of a network/);
  assert.throws(() => dnsConfig('bridge', { aliases: ['a'] }), /needs a user-defined network/);
  assert.throws(() => dnsConfig('bridge', { ip: '10.0.0.5' }), /needs a user-defined network/);
  assert.throws(() => dnsConfig('host', { dns: ['192.0.2.9'] }), /do not apply with --network host/);
  assert.equal(dnsConfig('mynet', { aliases: ['db'], ip: '10.5.0.9', dns: ['192.0.2.9'], dnsSearch: ['example.test'] }), { aliases: ['db'], ip: '10.5.0.9', dns: ['192.0.2.9'], dnsSearch: ['example.test'] });
  assert.throws(() => networkConfig('host', ['80'], false, undefined), /need the bridge network/);
  assert.throws(() => networkConfig('bridge', ['8080:80', '8080:81'], false, undefined), /published twice/);
  assert.throws(() => networkConfig('bridge', [], false, undefined, 'zz:zz'), /six hex bytes/);
  assert.equal(networkConfig('bridge', [], true, { '80/tcp': {} }, '02:42:AA:00:00:01'), { ports: [{ hostIp: '0.0.0.0', hostPort: 0, containerPort: 80, proto: 'tcp' }], mac: '02:42:aa:00:00:01' });
  assert.equal(networkConfig('none', [], false, { '80/tcp': {} }), {});
});

test('port: only while running, filtered by port and protocol', () => {
  const c = { status: 'running', network: { ip: '10.89.0.2', gateway: '10.89.0.1', mac: '', ports: [{ hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80, proto: 'tcp' }, { hostIp: '127.0.0.1', hostPort: 5353, containerPort: 53, proto: 'udp' }] } } as unknown as ContainerState;
  assert.equal(portLines(c), ['80/tcp -> 0.0.0.0:8080', '53/udp -> 127.0.0.1:5353']);
  assert.equal(portLines(c, '53/udp'), ['127.0.0.1:5353']);
  assert.equal(portLines(c, '53'), []);
  assert.equal(portLines({ ...c, status: 'exited' } as ContainerState), []);
});

test.run();
