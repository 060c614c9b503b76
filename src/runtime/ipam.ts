/** Address arithmetic for container networks: subnets, free addresses, MAC addresses. Pure. */
import { UsageError } from '../errors/index.js';

export function ipToInt(ip: string): number {
  const p = ip.split('.');
  if (p.length !== 4 || p.some((x) => !/^\d{1,3}$/.test(x) || Number(x) > 255)) throw new UsageError(`${ip} is not an IPv4 address`);
  return p.reduce((a, x) => a * 256 + Number(x), 0);
}

export function intToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

export interface Cidr {
  base: number;
  bits: number;
}

export function parseCidr(c: string): Cidr {
  const [ip, b] = c.split('/');
  const bits = Number(b);
  if (!ip || b === undefined || !Number.isInteger(bits) || bits < 8 || bits > 30) throw new UsageError(`subnet ${c}: use an IPv4 CIDR with a prefix from /8 to /30, e.g. 10.89.0.0/16`);
  const size = 2 ** (32 - bits);
  const n = ipToInt(ip);
  return { base: n - (n % size), bits };
}

export function inSubnet(ip: string, c: Cidr): boolean {
  const n = ipToInt(ip);
  return n >= c.base && n < c.base + 2 ** (32 - c.bits);
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  const [ea, eb] = [a.base + 2 ** (32 - a.bits), b.base + 2 ** (32 - b.bits)];
  return a.base < eb && b.base < ea;
}

/** The lowest free host address (not the network, broadcast or gateway address, nor a taken one). */
export function allocateIp(subnet: string, gateway: string, taken: Set<string>): string {
  const c = parseCidr(subnet);
  const last = c.base + 2 ** (32 - c.bits) - 1;
  for (let n = c.base + 1; n < last; n++) {
    const ip = intToIp(n);
    if (ip !== gateway && !taken.has(ip)) return ip;
  }
  throw new UsageError(`network ${subnet} has no free address left: remove containers, or use a network with a larger subnet`);
}

/** Docker's rule: 02:42 followed by the IPv4 address's bytes, so a MAC never repeats within a network. */
export function macFor(ip: string): string {
  const n = ipToInt(ip);
  return ['02', '42', ...[24, 16, 8, 0].map((s) => (Math.floor(n / 2 ** s) % 256).toString(16).padStart(2, '0'))].join(':');
}

/** The first candidate subnet no existing route overlaps (routes as `ip -4 route` destinations). */
export function pickSubnet(candidates: string[], routes: string[]): string {
  const used = routes.filter((r) => r.includes('/')).map(parseCidr);
  const free = candidates.find((c) => !used.some((u) => overlaps(parseCidr(c), u)));
  if (!free) throw new UsageError(`every default subnet (${candidates.join(', ')}) is already routed on this host: set one in the store's config.json ("bridgeSubnet")`);
  return free;
}
