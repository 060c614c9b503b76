/**
 * The default bridge network: a `tsbuild0` bridge, a network namespace and veth pair per running
 * container, an address from the bridge's subnet, outbound NAT and published ports in one nftables
 * table of tsbuild's own (`ip tsbuild`). Lifecycle: `attach` before the container's process starts
 * (the helper joins the namespace made here), `detach` after it ends. State is one JSON file under a
 * lock; an endpoint whose container is no longer active (a killed monitor, a reboot) is reclaimed by
 * the next attach or detach, and when the last endpoint goes, so do the bridge and the table, leaving
 * nothing on the host.
 */
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { TsbuildError } from '../errors/index.js';
import { acquireLock, processStartTime, readJSONFile, sameProcessAlive, writeFileAtomic } from '../fsutil/index.js';
import { allocateIp, macFor, parseCidr, pickSubnet } from './ipam.js';

export interface PortBinding {
  hostIp: string;
  /** 0 before attach: a free port is chosen. */
  hostPort: number;
  containerPort: number;
  proto: 'tcp' | 'udp';
}

export interface Endpoint {
  container: string;
  ip: string;
  mac: string;
  /** The named namespace (`ip netns`), its bind mount under /run/netns. */
  netns: string;
  veth: string;
  ports: PortBinding[];
  /** The process that attached it and detaches it when the container ends (monitor or attached run). */
  owner: { pid: number; start: number };
}

export interface BridgeState {
  Name: string;
  Driver: 'bridge';
  Bridge: string;
  Subnet: string;
  Gateway: string;
  Created: string;
  endpoints: Record<string, Endpoint>;
}

/** Runs a tool; throws with its stderr. A seam for tests. */
export type Runner = (cmd: string, args: string[], input?: string) => Promise<string>;

export const run: Runner = (cmd, args, input) =>
  new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { encoding: 'utf8' }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        return reject(new TsbuildError('NETWORK_TOOLS', `bridge networking needs ${cmd} (apt-get install -y iproute2 nftables), or run with --network host or none`));
      }
      reject(new TsbuildError('NETWORK_SETUP', `${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`));
    });
    if (input !== undefined) child.stdin!.end(input);
  });

const BRIDGE = 'tsbuild0';
const TABLE = 'tsbuild';
const CANDIDATES = ['10.89.0.0/16', '10.90.0.0/16', '10.91.0.0/16', '172.30.0.0/16', '192.168.230.0/24'];

/** The nftables table: NAT out of the subnet, DNAT of published ports (maps keyed by port), loopback access. */
export function ruleset(subnet: string, bridge: string): string {
  const dnat = [
    'fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @hostports',
    'fib daddr type local dnat ip to meta l4proto . th dport map @ports',
  ];
  return `table ip ${TABLE} {
  map ports { type inet_proto . inet_service : ipv4_addr . inet_service; }
  map hostports { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }
  chain prerouting { type nat hook prerouting priority -100; policy accept; ${dnat.join('; ')}; }
  chain output { type nat hook output priority -100; policy accept; ${dnat.join('; ')}; }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    ip saddr ${subnet} oifname != "${bridge}" masquerade
    ip saddr 127.0.0.0/8 oifname "${bridge}" masquerade
  }
}
`;
}

function element(p: PortBinding, ip: string): string {
  const any = p.hostIp === '0.0.0.0' || p.hostIp === '';
  return `${any ? 'ports' : 'hostports'} { ${any ? '' : `${p.hostIp} . `}${p.proto} . ${p.hostPort} : ${ip} . ${p.containerPort} }`;
}

/** Free right now on this host (nobody listens): bind and release, as Docker's port allocator probes. */
async function portFree(hostIp: string, port: number, proto: 'tcp' | 'udp'): Promise<number | undefined> {
  const host = hostIp || '0.0.0.0';
  return new Promise((resolve) => {
    if (proto === 'udp') {
      const s = dgram.createSocket('udp4');
      s.once('error', () => resolve(undefined));
      s.bind(port, host, () => {
        const p = s.address().port;
        s.close(() => resolve(p));
      });
      return;
    }
    const srv = net.createServer();
    srv.once('error', () => resolve(undefined));
    srv.listen(port, host, () => {
      const p = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(p));
    });
  });
}

export class Networks {
  private readonly dir: string;
  private readonly exec: Runner;
  private readonly sysctl: (key: string, value: string) => void;
  /** `exec` and `sysctl` are seams for tests (the sysctls are the current network namespace's). */
  constructor(storeRoot: string, o: { exec?: Runner; sysctl?: (key: string, value: string) => void } = {}) {
    this.dir = path.join(storeRoot, 'networks');
    this.exec = o.exec ?? run;
    this.sysctl = o.sysctl ?? ((k, v) => fs.writeFileSync(`/proc/sys/${k.replace(/\./g, '/')}`, v));
  }

  private get file(): string {
    return path.join(this.dir, 'bridge.json');
  }

  state(): BridgeState | undefined {
    return readJSONFile<BridgeState | undefined>(this.file, undefined);
  }

  endpoint(container: string): Endpoint | undefined {
    return this.state()?.endpoints[container];
  }

  private async locked<T>(fn: () => Promise<T>): Promise<T> {
    fs.mkdirSync(this.dir, { recursive: true });
    const release = (await acquireLock(path.join(this.dir, '.lock'), { wait: true }))!;
    try {
      return await fn();
    } finally {
      release();
    }
  }

  private save(s: BridgeState | undefined): void {
    if (s) writeFileAtomic(this.file, JSON.stringify(s, null, 1));
    else fs.rmSync(this.file, { force: true });
  }

  /** Makes the bridge and the table if missing (a crash may have left either, or neither). */
  private async ensure(s: BridgeState): Promise<void> {
    const bits = parseCidr(s.Subnet).bits;
    const have = await this.exec('ip', ['-o', 'link', 'show', 'dev', s.Bridge]).then(() => true, () => false);
    if (!have) {
      await this.exec('ip', ['-batch', '-'], `link add ${s.Bridge} type bridge\naddr add ${s.Gateway}/${bits} dev ${s.Bridge}\nlink set ${s.Bridge} up\n`);
    }
    // Forwarding for the NAT, and loopback-sourced packets allowed onto the bridge (published ports
    // reached at 127.0.0.1, as Docker does without its userland proxy).
    this.sysctl('net.ipv4.ip_forward', '1');
    this.sysctl(`net.ipv4.conf.${s.Bridge}.route_localnet`, '1');
    const table = await this.exec('nft', ['list', 'table', 'ip', TABLE]).then(() => true, () => false);
    if (!table) await this.exec('nft', ['-f', '-'], ruleset(s.Subnet, s.Bridge));
  }

  private async teardown(s: BridgeState, ep: Endpoint): Promise<void> {
    for (const p of ep.ports) await this.exec('nft', ['delete', 'element', 'ip', TABLE, ...element(p, ep.ip).split(' ')]).catch(() => undefined);
    // The veth goes with the namespace once its last process has gone.
    await this.exec('ip', ['netns', 'delete', ep.netns]).catch(() => undefined);
    await this.exec('ip', ['link', 'delete', ep.veth]).catch(() => undefined);
    delete s.endpoints[ep.container];
  }

  /** Endpoints whose owner died (kill -9, a reboot), and the bridge and table once nothing uses them. */
  private async reclaim(s: BridgeState): Promise<BridgeState | undefined> {
    for (const ep of Object.values(s.endpoints)) if (!sameProcessAlive(ep.owner.pid, ep.owner.start)) await this.teardown(s, ep);
    if (Object.keys(s.endpoints).length > 0) return s;
    await this.exec('nft', ['delete', 'table', 'ip', TABLE]).catch(() => undefined);
    await this.exec('ip', ['link', 'delete', s.Bridge]).catch(() => undefined);
    return undefined;
  }

  /** Connects a container (its namespace made here) and publishes its ports; returns the endpoint. */
  async attach(container: string, o: { ports?: PortBinding[]; mac?: string } = {}): Promise<Endpoint> {
    return this.locked(async () => {
      let s = this.state();
      const old = s?.endpoints[container];
      if (s && old) await this.teardown(s, old);
      if (s) s = await this.reclaim(s);
      if (!s) {
        const routes = (await this.exec('ip', ['-4', '-o', 'route', 'show'])).split('\n').map((l) => l.split(' ')[0]!);
        const subnet = pickSubnet(CANDIDATES, routes);
        // The gateway (the bridge's own address) is the subnet's first address, as Docker's.
        s = { Name: 'bridge', Driver: 'bridge', Bridge: BRIDGE, Subnet: subnet, Gateway: allocateIp(subnet, '', new Set()), Created: new Date().toISOString(), endpoints: {} };
      }
      await this.ensure(s);
      const ip = allocateIp(s.Subnet, s.Gateway, new Set(Object.values(s.endpoints).map((e) => e.ip)));
      const ports = await this.allocatePorts(s, o.ports ?? []);
      const short = container.slice(0, 12);
      const ep: Endpoint = {
        container, ip, mac: o.mac ?? macFor(ip), netns: `tsb-${short}`, veth: `tsbv${container.slice(0, 8)}`, ports,
        owner: { pid: process.pid, start: processStartTime(process.pid) ?? 0 },
      };
      // Recorded before anything is made, so a crash in between is reclaimed like any dead endpoint.
      s.endpoints[container] = ep;
      this.save(s);
      try {
        const bits = parseCidr(s.Subnet).bits;
        await this.exec('ip', ['netns', 'add', ep.netns]);
        await this.exec('ip', ['-batch', '-'], `link add ${ep.veth} type veth peer name eth0 netns ${ep.netns}\nlink set ${ep.veth} master ${s.Bridge} up\n`);
        await this.exec('ip', ['-n', ep.netns, '-batch', '-'], `link set lo up\nlink set eth0 address ${ep.mac}\naddr add ${ip}/${bits} dev eth0\nlink set eth0 up\nroute add default via ${s.Gateway}\n`);
        for (const p of ports) await this.exec('nft', ['add', 'element', 'ip', TABLE, ...element(p, ip).split(' ')]);
      } catch (e) {
        await this.teardown(s, ep);
        this.save(await this.reclaim(s));
        throw e;
      }
      return ep;
    });
  }

  /** Ports taken by other endpoints are refused; port 0 gets a free one; a port someone listens on is refused. */
  private async allocatePorts(s: BridgeState, want: PortBinding[]): Promise<PortBinding[]> {
    const taken = new Set(Object.values(s.endpoints).flatMap((e) => e.ports.map((p) => `${p.proto}/${p.hostPort}`)));
    const out: PortBinding[] = [];
    for (const p of want) {
      const port = await portFree(p.hostIp, p.hostPort, p.proto);
      const key = `${p.proto}/${port}`;
      if (port === undefined || taken.has(key)) {
        throw new TsbuildError('PORT_IN_USE', `cannot publish ${p.hostIp || '0.0.0.0'}:${p.hostPort}/${p.proto}: the port is already allocated${port === undefined ? ' (something on this host listens on it)' : ' (by another container)'}; pick another host port`);
      }
      taken.add(key);
      out.push({ ...p, hostPort: port });
    }
    return out;
  }

  /** Removes a container's endpoint (idempotent), reclaiming dead ones and the bridge when unused. */
  async detach(container: string): Promise<void> {
    await this.locked(async () => {
      const s = this.state();
      if (!s) return;
      const ep = s.endpoints[container];
      if (ep) await this.teardown(s, ep);
      this.save(await this.reclaim(s));
    });
  }
}
