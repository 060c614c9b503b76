/**
 * A container's network: `--network host|none|bridge|container:NAME` checked, `-p`/`-P` read with
 * Docker's rules, the bridge endpoint made before each start and removed after it, and what `port`,
 * `ps` and `inspect` show of it.
 */
import { TsbuildError, UsageError } from '../errors/index.js';
import { isRootless, slirpAvailable, startUserModeNetwork, SLIRP, type UserModeNetwork } from '../runtime/index.js';
import type { ContainerConfig, ContainerState, PortBinding } from '../runtime/index.js';
import type { Store } from '../store/index.js';
import { ensureDns } from './dns.js';

/** host and none and container:NAME share or lack a stack, slirp4netns is user-mode; everything else is a bridge network. */
export function bridged(mode: string): boolean {
  return mode !== 'host' && mode !== 'none' && !mode.startsWith('container:') && !userMode(mode);
}

/** `slirp4netns[:allow_host_loopback=true]`: a user-mode stack (podman's name and option). */
export function userMode(mode: string): boolean {
  return mode === 'slirp4netns' || mode.startsWith('slirp4netns:');
}

/** A user-defined network (by name): has a resolver, aliases and fixed addresses. */
export function bridgedUser(mode: string): boolean {
  return bridged(mode) && mode !== 'bridge';
}

/** --network-alias, --ip, --dns, --dns-search, --dns-option checked against the network. */
export function dnsConfig(mode: string, r: { aliases?: string[]; ip?: string; dns?: string[]; dnsSearch?: string[]; dnsOptions?: string[] }): Partial<ContainerConfig> {
  if (r.aliases?.length && !bridgedUser(mode)) throw new UsageError('--network-alias needs a user-defined network (tsbuild network create NAME, then --network NAME)');
  if (r.ip !== undefined && !bridgedUser(mode)) throw new UsageError('--ip needs a user-defined network (tsbuild network create --subnet …)');
  if (r.ip !== undefined && !/^\d{1,3}(\.\d{1,3}){3}$/.test(r.ip)) throw new UsageError(`--ip ${r.ip}: use an IPv4 address`);
  for (const d of r.dns ?? []) if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(d)) throw new UsageError(`--dns ${d}: use an IPv4 address`);
  if ((r.dns?.length || r.dnsSearch?.length || r.dnsOptions?.length) && (mode === 'host' || mode.startsWith('container:'))) {
    throw new UsageError(`--dns, --dns-search and --dns-option do not apply with --network ${mode}`);
  }
  const out: Partial<ContainerConfig> = {};
  if (r.aliases?.length) out.aliases = r.aliases;
  if (r.ip !== undefined) out.ip = r.ip;
  if (r.dns?.length) out.dns = r.dns;
  if (r.dnsSearch?.length) out.dnsSearch = r.dnsSearch;
  if (r.dnsOptions?.length) out.dnsOptions = r.dnsOptions;
  return out;
}

/** `--network` → the stored mode (`default` is Docker's other name for bridge; a name is a user network). */
export function networkMode(v: string | undefined): string {
  // Rootless: no bridge (veth and NAT need root on the host): slirp4netns where installed, as podman.
  const dflt = isRootless() ? (slirpAvailable() ? 'slirp4netns' : 'host') : 'bridge';
  const n = v === undefined || v === 'default' ? dflt : v;
  if (userMode(n)) {
    for (const o of n.split(':').slice(1).join(':').split(',').filter(Boolean)) {
      if (!/^allow_host_loopback=(true|false)$/.test(o)) throw new UsageError(`--network ${n}: unknown option ${o}; slirp4netns takes allow_host_loopback=true|false`);
    }
    if (!slirpAvailable()) throw new UsageError(`--network ${n}: slirp4netns is not installed (Debian: apt-get install slirp4netns)`);
    return n;
  }
  if (isRootless() && bridged(n)) {
    throw new UsageError(`--network ${n}: a rootless tsbuild has no bridge or user networks (they need root on the host); use --network slirp4netns (the default where installed), host or none`);
  }
  if (n === 'host' || n === 'none' || n === 'bridge') return n;
  if (n.startsWith('container:') && n.length > 'container:'.length) return n;
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(n)) throw new UsageError(`--network ${n}: use bridge (the default), host, none, container:NAME or the name of a network (tsbuild network ls)`);
  return n;
}

function portRange(v: string, what: string, flag: string): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(v);
  const [a, b] = m ? [Number(m[1]), Number(m[2] ?? m[1])] : [NaN, NaN];
  if (!m || a < (what === 'host' ? 0 : 1) || b > 65535 || b < a) throw new UsageError(`${flag}: invalid ${what} port ${v}: use a number or a range such as 8000-8010 (1-65535)`);
  return [a, b];
}

/** `-p [HOST_IP:][HOST_PORT[-END]:]CONTAINER_PORT[-END][/tcp|udp]`. */
export function parsePublish(v: string): PortBinding[] {
  const flag = `-p ${v}`;
  const [spec, proto = 'tcp'] = v.split('/');
  if (proto !== 'tcp' && proto !== 'udp') throw new UsageError(`${flag}: protocol ${proto}: use tcp or udp`);
  const parts = spec!.split(':');
  if (parts.length > 3) throw new UsageError(`${flag}: use [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO], e.g. -p 8080:80 or -p 127.0.0.1:8080:80/tcp`);
  const ctr = parts.pop()!;
  const host = parts.pop() ?? '';
  const hostIp = parts.pop() ?? '';
  if (hostIp && !/^\d{1,3}(\.\d{1,3}){3}$/.test(hostIp)) throw new UsageError(`${flag}: host address ${hostIp}: use an IPv4 address (IPv6 is not supported yet)`);
  const [c0, c1] = portRange(ctr, 'container', flag);
  const [h0, h1] = host === '' ? [0, 0] : portRange(host, 'host', flag);
  if (host !== '' && h1 - h0 !== c1 - c0 && c0 !== c1) throw new UsageError(`${flag}: the host range and the container range differ in length`);
  const out: PortBinding[] = [];
  // A host range for one container port: its first port (Docker would try the next ones when taken).
  for (let i = 0; i <= c1 - c0; i++) out.push({ hostIp: hostIp || '0.0.0.0', hostPort: host === '' ? 0 : c0 === c1 ? h0 : h0 + i, containerPort: c0 + i, proto: proto as 'tcp' | 'udp' });
  return out;
}

/** `-P`: every EXPOSEd port (`80/tcp`, `53/udp`) on a free host port. */
export function exposedPorts(exposed: Record<string, unknown> | undefined): PortBinding[] {
  return Object.keys(exposed ?? {}).flatMap((k) => parsePublish(k.includes('/') ? k : `${k}/tcp`));
}

/** Checks the network flags together; returns the bindings to store. */
export function networkConfig(mode: string, publish: string[], publishAll: boolean, exposed: Record<string, unknown> | undefined, mac?: string): Pick<ContainerConfig, 'ports' | 'mac'> {
  const ports = [...publish.flatMap(parsePublish), ...(publishAll ? exposedPorts(exposed) : [])];
  if (ports.length > 0 && !bridged(mode) && !userMode(mode)) throw new UsageError(`-p/-P need the bridge network (or slirp4netns); with --network ${mode} the container ${mode === 'host' ? "listens on the host's ports directly" : 'has no ports to publish'}`);
  if (mac !== undefined && !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(mac)) throw new UsageError(`--mac-address ${mac}: use six hex bytes, e.g. 02:42:0a:59:00:05`);
  if (mac !== undefined && !bridged(mode)) throw new UsageError('--mac-address needs a bridge network');
  // One host port for one container port per protocol: duplicates would shadow each other.
  const seen = new Set<string>();
  for (const p of ports) {
    const k = `${p.hostIp}:${p.hostPort}/${p.proto}`;
    if (p.hostPort !== 0 && seen.has(k)) throw new UsageError(`-p: host port ${p.hostPort}/${p.proto} is published twice`);
    seen.add(k);
  }
  return { ...(ports.length ? { ports } : {}), ...(mac ? { mac: mac.toLowerCase() } : {}) };
}

export interface JoinedNetwork {
  path: string;
  ip?: string;
  /** resolv.conf for the container: the network's DNS (user networks) or the upstreams. */
  resolv?: { nameservers: string[]; search: string[]; options: string[] };
}

function resolvFor(cfg: ContainerConfig, dnsAt: string | undefined): JoinedNetwork['resolv'] {
  const search = cfg.dnsSearch ?? [];
  const options = cfg.dnsOptions ?? [];
  // On a user network the container asks tsbuild's resolver (which forwards to --dns or the host's).
  if (dnsAt) return { nameservers: [dnsAt], search, options };
  if (cfg.dns?.length || search.length || options.length) return { nameservers: cfg.dns ?? [], search, options };
  return undefined;
}

/** Before a start: the namespace to join (bridge networks: made now; container:NAME: the other's). */
export async function joinNetwork(store: Store, rec: ContainerState, cfg: ContainerConfig, warn: (m: string) => void = () => undefined): Promise<JoinedNetwork | undefined> {
  if (bridged(cfg.network)) {
    const nets = [{ network: cfg.network, aliases: cfg.aliases, ip: cfg.ip }, ...(cfg.extraNetworks ?? [])];
    const a = await store.networks.attach(rec.id, { name: rec.name, networks: nets, ports: cfg.ports, mac: cfg.mac, dns: cfg.dns });
    const first = a.endpoints[0]!;
    store.containers.update(rec.id, { network: { ip: first.endpoint.ip, gateway: first.network.Gateway, mac: first.endpoint.mac, ports: first.endpoint.ports } });
    // The resolver listens on gateways of ours: bridge networks only (a macvlan gateway is the LAN's).
    let user = a.endpoints.find((e) => !e.network.Builtin && e.network.Driver === 'bridge');
    if (user) {
      try {
        await ensureDns(store);
      } catch (e) {
        // Names are a convenience; a container that cannot have them still runs, and says so.
        warn(`WARNING: container names on network ${user.network.Name} will not resolve: ${(e as Error).message}`);
        user = undefined;
      }
    }
    return { path: `/run/netns/${a.netns}`, ip: first.endpoint.ip, resolv: resolvFor(cfg, user?.network.Gateway) };
  }
  if (userMode(cfg.network)) {
    const n = await startUserModeNetwork({ ports: cfg.ports ?? [], allowHostLoopback: cfg.network.includes('allow_host_loopback=true') });
    userNets.set(rec.id, n);
    store.containers.update(rec.id, { network: { ip: SLIRP.ip, gateway: SLIRP.gateway, mac: '', ports: n.ports } });
    return { path: n.path, ip: SLIRP.ip, resolv: { nameservers: cfg.dns?.length ? cfg.dns : [SLIRP.dns], search: cfg.dnsSearch ?? [], options: cfg.dnsOptions ?? [] } };
  }
  if (cfg.network.startsWith('container:')) {
    const ref = cfg.network.slice('container:'.length);
    const other = store.containers.find(ref);
    if (other.status !== 'running' || !other.containerPid) throw new TsbuildError('CONTAINER_NOT_RUNNING', `--network container:${ref}: container ${ref} is not running; start it first`);
    return { path: `/proc/${other.containerPid}/ns/net`, ip: other.network?.ip };
  }
  return undefined;
}

/** The user-mode networks this process serves, by container id: they end with it, or at leave. */
const userNets = new Map<string, UserModeNetwork>();

/**
 * After the process ended (and on rm, in case its owner died first). `forget: false` leaves the
 * record alone: `rm` deletes it next, and a write of it would be one more locked update per `run --rm`.
 */
export async function leaveNetwork(store: Store, id: string, o: { forget?: boolean } = {}): Promise<void> {
  userNets.get(id)?.stop();
  userNets.delete(id);
  await store.networks.detach(id);
  if (o.forget !== false) store.containers.update(id, { network: undefined });
}

/** The network a container has now: only while it runs (or is paused), as Docker shows ports. */
function liveNetwork(c: ContainerState): ContainerState['network'] {
  return c.status === 'running' || c.status === 'paused' ? c.network : undefined;
}

/** `port`: `80/tcp -> 0.0.0.0:32768`, as Docker prints. */
export function portLines(c: ContainerState, filter?: string): string[] {
  const ports = liveNetwork(c)?.ports ?? [];
  const want = filter === undefined ? undefined : filter.includes('/') ? filter : `${filter}/tcp`;
  return ports.filter((p) => want === undefined || `${p.containerPort}/${p.proto}` === want).map((p) => `${want === undefined ? `${p.containerPort}/${p.proto} -> ` : ''}${p.hostIp}:${p.hostPort}`);
}

/** `ps`'s PORTS column. */
export function portsText(c: ContainerState): string {
  return (liveNetwork(c)?.ports ?? []).map((p) => `${p.hostIp}:${p.hostPort}->${p.containerPort}/${p.proto}`).join(', ');
}

/** `inspect`'s NetworkSettings. */
export function networkSettings(c: ContainerState): Record<string, unknown> {
  const n = liveNetwork(c);
  const ports: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const p of n?.ports ?? []) (ports[`${p.containerPort}/${p.proto}`] ??= []).push({ HostIp: p.hostIp, HostPort: String(p.hostPort) });
  const ep = { IPAddress: n?.ip ?? '', Gateway: n?.gateway ?? '', MacAddress: n?.mac ?? '' };
  const nets = c.config && bridged(c.config.network) ? [c.config.network, ...(c.config.extraNetworks ?? []).map((x) => x.network)] : [];
  return { ...ep, Ports: ports, Networks: Object.fromEntries(nets.map((x, i) => [x, i === 0 ? ep : {}])) };
}

/** `inspect`'s HostConfig.PortBindings: what was asked for (0: a free port at each start). */
export function portBindings(ports: PortBinding[] | undefined): Record<string, { HostIp: string; HostPort: string }[]> {
  const out: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const p of ports ?? []) (out[`${p.containerPort}/${p.proto}`] ??= []).push({ HostIp: p.hostIp, HostPort: p.hostPort ? String(p.hostPort) : '' });
  return out;
}
