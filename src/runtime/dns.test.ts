import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { answer, lookup, parseQuery, TYPE_A } from './dns.js';
import type { NetworkState } from './network.js';

/** A query as resolvers send it: id, RD set, one question. */
function query(name: string, type = TYPE_A, id = 0x1234): Buffer {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const head = Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
  return Buffer.concat([head, ...labels, Buffer.from([0, type >> 8, type & 0xff, 0, 1])]);
}

test('parse: the first question, lower-cased; malformed packets and answers are refused', () => {
  const q = parseQuery(query('Web.Example'))!;
  assert.equal({ id: q.id, name: q.name, type: q.type }, { id: 0x1234, name: 'web.example', type: TYPE_A });
  assert.is(parseQuery(Buffer.alloc(5)), undefined);
  const resp = query('x');
  resp[2] = 0x81;
  assert.is(parseQuery(resp), undefined, 'a response is not a query');
  const bad = query('abc');
  bad[12] = 200;
  assert.is(parseQuery(bad), undefined, 'a label longer than 63 (or a compression pointer) in a question');
  assert.is(parseQuery(query('abc').subarray(0, 16)), undefined, 'truncated');
});

test('answer: A records after the question, the id kept, NXDOMAIN and SERVFAIL as rcodes', () => {
  const qb = query('db');
  const q = parseQuery(qb)!;
  const a = answer(qb, q, ['10.89.0.7', '10.89.0.8']);
  assert.is(a.readUInt16BE(0), 0x1234);
  assert.is(a.readUInt16BE(2) & 0x8000, 0x8000, 'QR');
  assert.is(a.readUInt16BE(2) & 0x0100, 0x0100, 'RD echoed');
  assert.is(a.readUInt16BE(6), 2);
  assert.equal([...a.subarray(q.end + 12, q.end + 16)], [10, 89, 0, 7]);
  assert.is(a.length, q.end + 32);
  assert.is(answer(qb, q, [], 3).readUInt16BE(2) & 0xf, 3);
});

test('lookup: names and aliases of the network, case-insensitive, a trailing dot ignored', () => {
  const ep = (container: string, names: string[], ip: string) => ({ container, names, ip, mac: '', iface: 'eth0', veth: '', netns: '', ports: [], owner: { pid: 1, start: 0 } });
  const n = { endpoints: { a: ep('a', ['web', 'www'], '10.0.0.2'), b: ep('b', ['db'], '10.0.0.3'), c: ep('c', ['WWW2', 'www'], '10.0.0.4') } } as unknown as NetworkState;
  assert.equal(lookup(n, 'db.'), ['10.0.0.3']);
  assert.equal(lookup(n, 'www'), ['10.0.0.2', '10.0.0.4']);
  assert.equal(lookup(n, 'www2'), ['10.0.0.4']);
  assert.equal(lookup(n, 'nope'), []);
});

test.run();
