/**
 * Container networks: bridges with NAT, one network namespace per running container joined to one or
 * more of them. The built-in `bridge` network (`tsbuild0`) is made on first use and removed with its
 * last endpoint; user networks (`network create`) keep their bridge until `network rm`. Lifecycle of an
 * endpoint: `attach` before the container's process starts (the helper joins the namespace made here),
 * `detach` after it ends, `connect`/`disconnect` while it runs. State: one JSON file per network under
 * one lock. An endpoint records its owner (the monitor or attached run, by pid and start time); one
 * whose owner died is reclaimed by the next command that takes the lock. When no network is left, the
 * nftables table goes too, so nothing stays on the host.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { NotFoundError, TsbuildError, UsageError } from '../errors/index.js';
import { acquireLock, byText, ensureDir, processStartTime, readJSONFile, sameProcessAlive, writeFileAtomic } from '../fsutil/index.js';
import { allocateIp, inSubnet, intToIp, macFor, overlaps, parseCidr, pickSubnet } from './ipam.js';
import { addNetworkRules, ensureTable, portElement, removeNetworkRules, TABLE } from './nft.js';
import { portFree } from './ports.js';
import { run, type Runner } from './netexec.js';

export type { Runner } from './netexec.js';

export interface PortBinding {
  hostIp: string;
  /** 0 before attach: a free port is chosen. */
  hostPort: number;
  containerPort: number;
  proto: 'tcp' | 'udp';
}

export interface Endpoint {
  container: string;
  /** The container's name and --network-alias values: what the network's DNS answers for. */
  names: string[];
  ip: string;
  mac: string;
  /** Interface inside the container (eth0, eth1, …) and the host end of its veth pair. */
  iface: string;
  veth: string;
  /** The container's named namespace (`ip netns`), shared by its endpoints. */
  netns: string;
  ports: PortBinding[];
  /** The container's --dns servers: where the network's resolver forwards its other questions. */
  dns?: string[];
  /** The process that attached it and detaches it when the container ends (monitor or attached run). */
  owner: { pid: number; start: number };
}

export interface NetworkState {
  Name: string;
  Id: string;
  /** bridge: a bridge of ours with NAT; macvlan/ipvlan: sub-interfaces of `Parent`, on its own LAN. */
  Driver: NetworkDriver;
  /** The bridge device (bridge driver) or the parent interface (macvlan, ipvlan). */
  Bridge: string;
  Subnet: string;
  Gateway: string;
  Internal: boolean;
  Labels: Record<string, string>;
  Created: string;
  /** The built-in `bridge` network: no name resolution, removed with its last endpoint. */
  Builtin?: boolean;
  endpoints: Record<string, Endpoint>;
}

export type NetworkDriver = 'bridge' | 'macvlan' | 'ipvlan';

const CANDIDATES = ['10.89.0.0/16', '10.90.0.0/16', '10.91.0.0/16', '10.92.0.0/16', '10.93.0.0/16', '172.30.0.0/16', '192.168.230.0/24'];
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
export const RESERVED = ['bridge', 'host', 'none', 'default'];

export interface AttachRequest {
  /** The container's name (answered by the networks' DNS with its aliases). */
  name: string;
  networks: { network: string; aliases?: string[]; ip?: string }[];
  /** Published on the first network's address. */
  ports?: PortBinding[];
  mac?: string;
  dns?: string[];
}

export class Networks {
  private readonly dir: string;
  private readonly exec: Runner;
  private readonly sysctl: (key: string, value: string) => void;
  /** The built-in bridge's device and the nftables table: the default store's are `tsbuild0` and
   * `tsbuild`; another store (`--root`) gets its own, so two stores never share addresses or rules. */
  readonly bridgeName: string;
  readonly table: string;
  /** `exec` and `sysctl` are seams for tests (the sysctls are the current network namespace's). */
  constructor(storeRoot: string, o: { exec?: Runner; sysctl?: (key: string, value: string) => void } = {}) {
    this.dir = path.join(storeRoot, 'networks');
    const h = crypto.createHash('sha256').update(path.resolve(storeRoot)).digest('hex').slice(0, 8);
    const dflt = path.resolve(storeRoot) === '/var/lib/tsbuild';
    this.bridgeName = dflt ? 'tsbuild0' : `tsbr${h}`;
    this.table = dflt ? TABLE : `${TABLE}_${h}`;
    this.exec = o.exec ?? run;
    this.sysctl = o.sysctl ?? ((k, v) => fs.writeFileSync(`/proc/sys/${k.replace(/\./g, '/')}`, v));
  }

  private file(name: string): string {
    return path.join(this.dir, `${name}.json`);
  }

  list(): NetworkState[] {
    let names: string[] = [];
    try {
      names = fs.readdirSync(this.dir).filter((f) => f.endsWith('.json') && !f.startsWith('.'));
    } catch {
      return [];
    }
    return names.flatMap((f) => {
      try {
        const s = readJSONFile<NetworkState | undefined>(path.join(this.dir, f), undefined);
        return s ? [s] : [];
      } catch {
        return []; // a damaged file hides nothing else
      }
    }).sort((a, b) => byText(a.Name, b.Name));
  }

  /** By name, full id or unique id prefix, as Docker resolves networks. */
  get(ref: string): NetworkState | undefined {
    const all = this.list();
    const byName = all.find((n) => n.Name === ref);
    if (byName || ref.length < 3) return byName;
    const byId = all.filter((n) => n.Id.startsWith(ref));
    return byId.length === 1 ? byId[0] : undefined;
  }

  /** The container's endpoints, on every network. */
  endpoints(container: string): { network: NetworkState; endpoint: Endpoint }[] {
    return this.list().flatMap((n) => (n.endpoints[container] ? [{ network: n, endpoint: n.endpoints[container]! }] : []));
  }

  private async locked<T>(fn: () => Promise<T>): Promise<T> {
    ensureDir(this.dir);
    const release = (await acquireLock(path.join(this.dir, '.lock'), { wait: true }))!;
    try {
      return await fn();
    } finally {
      release();
    }
  }

  private save(s: NetworkState): void {
    writeFileAtomic(this.file(s.Name), JSON.stringify(s, null, 1));
  }

  /** Makes a network's bridge, rules and table if missing (a crash may have left any of them). */
  private async ensure(s: NetworkState): Promise<void> {
    if (s.Driver !== 'bridge') {
      // Nothing of ours on the host: the parent must exist (and be up for traffic to flow).
      await this.exec('ip', ['-o', 'link', 'show', 'dev', s.Bridge]).catch(() => {
        throw new TsbuildError('NETWORK_PARENT', `network ${s.Name}: its parent interface ${s.Bridge} does not exist (ip link lists them); create the network again with -o parent=IFACE`);
      });
      return;
    }
    await ensureTable(this.exec, this.table);
    const have = await this.exec('ip', ['-o', 'link', 'show', 'dev', s.Bridge]).then(() => true, () => false);
    if (!have) {
      await this.exec('ip', ['-batch', '-'], `link add ${s.Bridge} type bridge\naddr add ${s.Gateway}/${parseCidr(s.Subnet).bits} dev ${s.Bridge}\nlink set ${s.Bridge} up\n`);
      await removeNetworkRules(this.exec, s, this.table);
      await addNetworkRules(this.exec, s, this.table);
    }
    // Forwarding for the NAT, and loopback-sourced packets allowed onto the bridge (published ports
    // reached at 127.0.0.1, as Docker does without its userland proxy).
    this.sysctl('net.ipv4.ip_forward', '1');
    this.sysctl(`net.ipv4.conf.${s.Bridge}.route_localnet`, '1');
  }

  /** Removes a network's bridge and rules, and the table once no network is left. */
  private async destroy(s: NetworkState): Promise<void> {
    if (s.Driver === 'bridge') {
      await removeNetworkRules(this.exec, s, this.table);
      await this.exec('ip', ['link', 'delete', s.Bridge]).catch(() => undefined);
    }
    fs.rmSync(this.file(s.Name), { force: true });
    if (this.list().length === 0) await this.exec('nft', ['delete', 'table', 'ip', this.table]).catch(() => undefined);
  }

  private async dropEndpoint(s: NetworkState, ep: Endpoint): Promise<void> {
    for (const p of ep.ports) await this.exec('nft', ['delete', ...portElement(p, ep.ip, this.table)]).catch(() => undefined);
    // A veth goes with either end; a macvlan/ipvlan interface lives only in the container's namespace.
    await this.exec('ip', ['link', 'delete', ep.veth]).catch(() => undefined);
    if (s.Driver !== 'bridge') await this.exec('ip', ['-n', ep.netns, 'link', 'delete', ep.iface]).catch(() => undefined);
    delete s.endpoints[ep.container];
  }

  /** Endpoints whose owner died (and `also`'s); the built-in network goes with its last endpoint. */
  private async reclaim(also?: string): Promise<void> {
    const namespaces = new Set<string>();
    for (const s of this.list()) {
      let changed = false;
      for (const ep of Object.values(s.endpoints)) {
        if (ep.container !== also && sameProcessAlive(ep.owner.pid, ep.owner.start)) continue;
        await this.dropEndpoint(s, ep);
        namespaces.add(ep.netns);
        changed = true;
      }
      if (s.Builtin && Object.keys(s.endpoints).length === 0) await this.destroy(s);
      else if (changed) this.save(s);
    }
    const live = new Set(this.list().flatMap((s) => Object.values(s.endpoints).map((e) => e.netns)));
    for (const ns of namespaces) if (!live.has(ns)) await this.exec('ip', ['netns', 'delete', ns]).catch(() => undefined);
  }

  private newState(name: string, subnet: string, gateway: string | undefined, o: { internal?: boolean; labels?: Record<string, string>; builtin?: boolean; driver?: NetworkDriver; parent?: string }): NetworkState {
    const id = crypto.randomBytes(32).toString('hex');
    const gw = gateway ?? allocateIp(subnet, '', new Set());
    if (!inSubnet(gw, parseCidr(subnet))) throw new UsageError(`--gateway ${gw} is not in the subnet ${subnet}`);
    return {
      Name: name, Id: id, Driver: o.driver ?? 'bridge', Bridge: o.parent ?? (o.builtin ? this.bridgeName : `tsb-${id.slice(0, 10)}`), Subnet: subnet, Gateway: gw, Internal: o.internal ?? false,
      Labels: o.labels ?? {}, Created: new Date().toISOString(), ...(o.builtin ? { Builtin: true } : {}), endpoints: {},
    };
  }

  private async freeSubnet(): Promise<string> {
    const routes = (await this.exec('ip', ['-4', '-o', 'route', 'show'])).split('\n').map((l) => l.split(' ')[0]!);
    return pickSubnet(CANDIDATES, [...routes, ...this.list().map((n) => n.Subnet)]);
  }

  /** `network create`: the bridge and its rules now; the subnet given or the first free one. */
  async create(name: string, o: { subnet?: string; gateway?: string; internal?: boolean; labels?: Record<string, string>; driver?: NetworkDriver; parent?: string } = {}): Promise<NetworkState> {
    if ((o.driver ?? 'bridge') !== 'bridge' && !o.parent) throw new UsageError(`--driver ${o.driver} needs -o parent=IFACE (the host interface whose LAN the containers join)`);
    if (o.driver !== undefined && o.driver !== 'bridge' && o.internal) throw new UsageError(`--internal is for bridge networks`);
    if (!NAME.test(name)) throw new UsageError(`invalid network name "${name}": use letters, digits, _ . -`);
    if (RESERVED.includes(name)) throw new UsageError(`network name ${name} is reserved (it is a built-in network mode)`);
    return this.locked(async () => {
      if (this.get(name)) throw new TsbuildError('NETWORK_EXISTS', `network with name ${name} already exists`);
      let subnet = o.subnet;
      if (subnet !== undefined) {
        const c = parseCidr(subnet);
        subnet = `${intToIp(c.base)}/${c.bits}`;
        const clash = this.list().find((n) => overlaps(parseCidr(n.Subnet), c));
        if (clash) throw new UsageError(`--subnet ${o.subnet} overlaps network ${clash.Name} (${clash.Subnet}): pick another`);
      } else subnet = await this.freeSubnet();
      const s = this.newState(name, subnet, o.gateway, o);
      this.save(s);
      try {
        await this.ensure(s);
      } catch (e) {
        await this.destroy(s);
        throw e;
      }
      return s;
    });
  }

  /** `network rm`: refused while a running container is on it. */
  async remove(ref: string): Promise<void> {
    await this.locked(async () => {
      await this.reclaim();
      const s = this.get(ref);
      if (!s) throw new NotFoundError(`network ${ref} not found`, 'NETWORK_NOT_FOUND');
      if (s.Builtin) throw new UsageError(`bridge is a pre-defined network and cannot be removed`);
      const users = Object.values(s.endpoints);
      if (users.length > 0) throw new TsbuildError('NETWORK_IN_USE', `network ${s.Name} has active endpoints (${users.map((u) => u.names[0]).join(', ')}): stop or disconnect them first`);
      await this.destroy(s);
    });
  }

  /** Connects a container, in a namespace made here, to its networks; ports go on the first one's address. */
  async attach(container: string, req: AttachRequest): Promise<{ netns: string; endpoints: { network: NetworkState; endpoint: Endpoint }[] }> {
    return this.locked(async () => {
      await this.reclaim(container);
      const netns = `tsb-${container.slice(0, 12)}`;
      const owner = { pid: process.pid, start: processStartTime(process.pid) ?? 0 };
      const made: { network: NetworkState; endpoint: Endpoint }[] = [];
      try {
        await this.exec('ip', ['netns', 'add', netns]);
        // Docker's defaults: any port bindable, ping unprivileged (a userns container's root holds no capabilities here).
        await this.exec('ip', ['netns', 'exec', netns, 'sh', '-c', `ip link set lo up && echo 0 > /proc/sys/net/ipv4/ip_unprivileged_port_start && echo '0 2147483647' > /proc/sys/net/ipv4/ping_group_range`]);
        for (const [i, want] of req.networks.entries()) {
          const s = await this.network(want.network);
          if (i === 0 && req.ports?.length && s.Driver !== 'bridge') throw new UsageError(`-p/-P: network ${s.Name} is ${s.Driver}; its containers are on the LAN of ${s.Bridge} with their own addresses, so there is nothing to publish`);
          const ports = i === 0 ? await this.allocatePorts(req.ports ?? []) : [];
          const o = { names: [req.name, ...(want.aliases ?? [])], ports, mac: i === 0 ? req.mac : undefined, ip: want.ip, dns: req.dns };
          made.push({ network: s, endpoint: await this.connectIn(s, container, netns, i, owner, o) });
        }
      } catch (e) {
        await this.reclaim(container);
        await this.exec('ip', ['netns', 'delete', netns]).catch(() => undefined);
        throw e;
      }
      return { netns, endpoints: made };
    });
  }

  /** A network by name; the built-in one is made on first use. */
  private async network(ref: string): Promise<NetworkState> {
    let s = ref === 'bridge' ? this.list().find((n) => n.Builtin) : this.get(ref);
    if (!s && ref === 'bridge') s = this.newState('bridge', await this.freeSubnet(), undefined, { builtin: true });
    if (!s) throw new NotFoundError(`network ${ref} not found: create it with tsbuild network create ${ref}`, 'NETWORK_NOT_FOUND');
    return s;
  }

  /** One endpoint: recorded first (a crash is then reclaimed like a dead owner's), then made. */
  private async connectIn(s: NetworkState, container: string, netns: string, index: number, owner: Endpoint['owner'], o: { names: string[]; ports: PortBinding[]; mac?: string; ip?: string; dns?: string[] }): Promise<Endpoint> {
    const taken = new Set(Object.values(s.endpoints).map((e) => e.ip));
    if (o.ip !== undefined) {
      if (s.Builtin) throw new UsageError('--ip needs a user-defined network (tsbuild network create --subnet …)');
      if (!inSubnet(o.ip, parseCidr(s.Subnet)) || o.ip === s.Gateway) throw new UsageError(`--ip ${o.ip} is not a free address of network ${s.Name} (${s.Subnet}, gateway ${s.Gateway})`);
      if (taken.has(o.ip)) throw new TsbuildError('ADDRESS_IN_USE', `--ip ${o.ip}: the address is already in use on network ${s.Name}`);
    }
    const ip = o.ip ?? allocateIp(s.Subnet, s.Gateway, taken);
    const ep: Endpoint = {
      container, names: o.names, ip, mac: o.mac ?? macFor(ip), iface: `eth${index}`, veth: `tsbv${container.slice(0, 8)}${index}`, netns, ports: o.ports, owner,
      ...(o.dns?.length ? { dns: o.dns } : {}),
    };
    s.endpoints[container] = ep;
    this.save(s);
    await this.ensure(s);
    const bits = parseCidr(s.Subnet).bits;
    let inside = '';
    if (s.Driver === 'bridge') {
      await this.exec('ip', ['-batch', '-'], `link add ${ep.veth} type veth peer name ${ep.iface} netns ${netns}\nlink set ${ep.veth} master ${s.Bridge} up\n`);
    } else {
      // Made on the host under a unique name, moved into the namespace, renamed there.
      const type = s.Driver === 'macvlan' ? 'macvlan mode bridge' : 'ipvlan mode l2';
      await this.exec('ip', ['-batch', '-'], `link add ${ep.veth} link ${s.Bridge} type ${type}\nlink set ${ep.veth} netns ${netns}\n`);
      inside = `link set ${ep.veth} name ${ep.iface}\n`;
    }
    // ipvlan interfaces share the parent's MAC address.
    const mac = s.Driver === 'ipvlan' ? '' : `link set ${ep.iface} address ${ep.mac}\n`;
    await this.exec('ip', ['-n', netns, '-batch', '-'], `${inside}${mac}addr add ${ip}/${bits} dev ${ep.iface}\nlink set ${ep.iface} up\n${index === 0 ? `route add default via ${s.Gateway}\n` : ''}`);
    for (const p of ep.ports) await this.exec('nft', ['add', ...portElement(p, ip, this.table)]);
    return ep;
  }

  /** Ports taken by other endpoints are refused; port 0 gets a free one; a port someone listens on is refused. */
  private async allocatePorts(want: PortBinding[]): Promise<PortBinding[]> {
    const taken = new Set(this.list().flatMap((n) => Object.values(n.endpoints).flatMap((e) => e.ports.map((p) => `${p.proto}/${p.hostPort}`))));
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

  /** `network connect` of a running container (its namespace exists). */
  async connect(container: string, network: string, o: { name: string; aliases?: string[]; owner: Endpoint['owner'] }): Promise<Endpoint> {
    return this.locked(async () => {
      await this.reclaim();
      const mine = this.endpoints(container);
      if (mine.length === 0) throw new TsbuildError('CONTAINER_NOT_CONNECTED', 'the container is not running on a bridge network: start it first, or run it with --network NAME');
      const s = await this.network(network);
      if (s.endpoints[container]) throw new TsbuildError('ALREADY_CONNECTED', `container ${o.name} is already connected to network ${s.Name}`);
      const used = new Set(mine.map((m) => Number(m.endpoint.iface.slice(3))));
      let i = 0;
      while (used.has(i)) i++;
      try {
        return await this.connectIn(s, container, mine[0]!.endpoint.netns, i, o.owner, { names: [o.name, ...(o.aliases ?? [])], ports: [] });
      } catch (e) {
        const cur = this.get(s.Name);
        if (cur?.endpoints[container]) {
          await this.dropEndpoint(cur, cur.endpoints[container]!);
          this.save(cur);
        }
        throw e;
      }
    });
  }

  /** `network disconnect`: the container leaves one network (its veth goes). */
  async disconnect(container: string, network: string): Promise<void> {
    await this.locked(async () => {
      const s = this.get(network) ?? (network === 'bridge' ? this.list().find((n) => n.Builtin) : undefined);
      if (!s) throw new NotFoundError(`network ${network} not found`, 'NETWORK_NOT_FOUND');
      const ep = s.endpoints[container];
      if (!ep) throw new TsbuildError('NOT_CONNECTED', `the container is not connected to network ${s.Name}`);
      await this.dropEndpoint(s, ep);
      if (s.Builtin && Object.keys(s.endpoints).length === 0) await this.destroy(s);
      else this.save(s);
    });
  }

  /** Removes a container from every network and deletes its namespace (idempotent). */
  async detach(container: string): Promise<void> {
    await this.locked(async () => {
      await this.reclaim(container);
      // Its namespace too, even when `disconnect` already took its last endpoint; a container that
      // never had one (--network none or host) costs no `ip` process.
      const netns = `tsb-${container.slice(0, 12)}`;
      if (fs.existsSync(path.join('/run/netns', netns))) await this.exec('ip', ['netns', 'delete', netns]).catch(() => undefined);
    });
  }

  /** Endpoints whose owner died, reclaimed now (`network ls`, `prune`). */
  async sweep(): Promise<void> {
    await this.locked(() => this.reclaim());
  }
}
