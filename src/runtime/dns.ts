/**
 * The resolver of user networks, as Docker's embedded DNS and podman's aardvark-dns: it answers A
 * queries for the names and aliases of the containers on the network a query arrives from (it listens
 * on each user network's gateway address), and forwards every other query to the asking container's
 * --dns servers or the host's resolvers, relaying the answer unchanged. UDP only.
 */
import dgram from 'node:dgram';
import fs from 'node:fs';
import type { NetworkState } from './network.js';

export interface Question {
  id: number;
  name: string;
  type: number;
  /** Where the question section ends (the answer is appended after it). */
  end: number;
}

export const TYPE_A = 1;
export const TYPE_AAAA = 28;

/** The first question of a query, or undefined for anything that is not a plain query. */
export function parseQuery(msg: Buffer): Question | undefined {
  if (msg.length < 12 || msg[2]! & 0x80 || msg.readUInt16BE(4) < 1) return undefined;
  const labels: string[] = [];
  let i = 12;
  for (;;) {
    const len = msg[i];
    if (len === undefined || len > 63) return undefined;
    i++;
    if (len === 0) break;
    if (i + len > msg.length) return undefined;
    labels.push(msg.subarray(i, i + len).toString('latin1'));
    i += len;
  }
  if (i + 4 > msg.length) return undefined;
  return { id: msg.readUInt16BE(0), name: labels.join('.').toLowerCase(), type: msg.readUInt16BE(i), end: i + 4 };
}

/** An answer to `q` (from `query`, its bytes): A records for `ips`, or the rcode given (3: NXDOMAIN). */
export function answer(query: Buffer, q: Question, ips: string[], rcode = 0, ttl = 600): Buffer {
  const head = Buffer.from(query.subarray(0, q.end));
  // QR, opcode 0, AA, the asker's RD, RA; one question, the answers, no others.
  head.writeUInt16BE(0x8400 | (query[2]! & 0x01) << 8 | 0x80 | rcode, 2);
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(ips.length, 6);
  head.writeUInt32BE(0, 8);
  const rrs = ips.map((ip) => {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0);
    rr.writeUInt16BE(TYPE_A, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt32BE(ttl, 6);
    rr.writeUInt16BE(4, 10);
    ip.split('.').forEach((b, k) => rr.writeUInt8(Number(b), 12 + k));
    return rr;
  });
  return Buffer.concat([head, ...rrs]);
}

/** The container names and aliases of one network → addresses (a name may be several containers'). */
export function lookup(net: NetworkState, name: string): string[] {
  const n = name.replace(/\.$/, '');
  return Object.values(net.endpoints).filter((e) => e.names.some((x) => x.toLowerCase() === n)).map((e) => e.ip);
}

export function hostResolvers(file = '/etc/resolv.conf'): string[] {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').flatMap((l) => {
      const m = /^\s*nameserver\s+(\d+\.\d+\.\d+\.\d+)\s*$/.exec(l);
      return m ? [m[1]!] : [];
    });
  } catch {
    return [];
  }
}

/** Sends a query to the upstreams in turn; the first answer wins, each gets `timeoutMs`. */
export async function forward(query: Buffer, upstreams: string[], timeoutMs = 2000): Promise<Buffer | undefined> {
  for (const up of upstreams) {
    const r = await new Promise<Buffer | undefined>((resolve) => {
      const s = dgram.createSocket('udp4');
      let settled = false;
      const done = (b?: Buffer) => {
        if (settled) return;
        settled = true;
        clearTimeout(t);
        s.close();
        resolve(b);
      };
      const t = setTimeout(() => done(), timeoutMs);
      s.on('message', (m) => done(m));
      s.on('error', () => done());
      s.send(query, 53, up);
    });
    if (r) return r;
  }
  return undefined;
}

/**
 * Serves every user network that has endpoints, re-reading `networks()` every `pollMs`; returns when
 * none is left for `idleMs` (the last container went), so the resolver lives only while needed.
 */
export async function serveDns(networks: () => NetworkState[], o: { pollMs?: number; idleMs?: number; upstreams?: () => string[]; onServing?: (gateways: string[]) => void } = {}): Promise<void> {
  const sockets = new Map<string, dgram.Socket>();
  const bound = new Set<string>();
  let current: NetworkState[] = [];
  // The socket is looked up again when the answer is ready: its network may have gone meanwhile.
  const reply = (gateway: string, b: Buffer, to: dgram.RemoteInfo) => {
    try {
      sockets.get(gateway)?.send(b, to.port, to.address);
    } catch {
      // closed since: the asker will retry or give up
    }
  };
  const onQuery = async (gateway: string, msg: Buffer, from: dgram.RemoteInfo) => {
    const q = parseQuery(msg);
    if (!q) return;
    const net = current.find((n) => n.Gateway === gateway);
    const ips = net ? lookup(net, q.name) : [];
    if (ips.length > 0) return reply(gateway, answer(msg, q, q.type === TYPE_A ? ips : []), from);
    const asker = net && Object.values(net.endpoints).find((e) => e.ip === from.address);
    const up = await forward(msg, asker?.dns?.length ? asker.dns : (o.upstreams ?? hostResolvers)());
    reply(gateway, up ?? answer(msg, q, [], 2), from);
  };
  let idleSince = Date.now();
  for (;;) {
    current = networks().filter((n) => !n.Builtin && n.Driver === 'bridge' && Object.keys(n.endpoints).length > 0);
    const want = new Set(current.map((n) => n.Gateway));
    for (const [gw, s] of sockets) {
      if (!want.has(gw)) {
        s.close();
        sockets.delete(gw);
      }
    }
    for (const gw of want) {
      if (sockets.has(gw)) continue;
      const s = dgram.createSocket('udp4');
      s.on('message', (m, r) => void onQuery(gw, m, r).catch(() => undefined));
      // The bridge may be moments from having its address: the next round tries again.
      s.on('error', () => {
        sockets.delete(gw);
        bound.delete(gw);
        try {
          s.close();
        } catch {
          // already closed
        }
      });
      s.bind(53, gw, () => {
        bound.add(gw);
        o.onServing?.([...bound].sort());
      });
      sockets.set(gw, s);
    }
    for (const gw of [...bound]) if (!sockets.has(gw)) bound.delete(gw);
    o.onServing?.([...bound].sort());
    if (current.length > 0) idleSince = Date.now();
    else if (Date.now() - idleSince > (o.idleMs ?? 3000)) break;
    await new Promise((r) => setTimeout(r, o.pollMs ?? 250));
  }
  for (const s of sockets.values()) s.close();
}
