/** `network create|ls|inspect|rm|prune|connect|disconnect`, with Docker's shapes and rules. */
import { TsbuildError, UsageError } from '../errors/index.js';
import { RESERVED_NETWORKS, type NetworkState } from '../runtime/index.js';
import type { Store } from '../store/index.js';
import { ensureDns } from './dns.js';
import { keyValues } from './volumes.js';
import { byText } from '../fsutil/index.js';

export interface NetworkCreateRequest {
  driver?: string;
  subnet?: string;
  gateway?: string;
  internal?: boolean;
  labels?: string[];
  options?: string[];
}

export async function createNetwork(store: Store, name: string, r: NetworkCreateRequest = {}): Promise<NetworkState> {
  const driver = r.driver ?? 'bridge';
  if (driver !== 'bridge' && driver !== 'macvlan' && driver !== 'ipvlan') throw new UsageError(`--driver ${driver}: use bridge, macvlan or ipvlan`);
  const opts = keyValues(r.options ?? [], '-o');
  for (const o of Object.keys(opts)) if (o !== 'parent' || driver === 'bridge') throw new UsageError(`-o ${o}: ${driver === 'bridge' ? 'the bridge driver takes no options yet' : `the ${driver} driver takes parent=IFACE`}`);
  if (r.gateway !== undefined && r.subnet === undefined) throw new UsageError('--gateway needs --subnet');
  return store.networks.create(name, { subnet: r.subnet, gateway: r.gateway, internal: r.internal, labels: keyValues(r.labels ?? [], '--label'), driver, parent: opts.parent });
}

export interface NetworkRow {
  ID: string;
  Name: string;
  Driver: string;
  Scope: string;
  Internal: boolean;
  Subnet: string;
  Containers: number;
}

/** Docker lists bridge, host and none even when nothing uses them; so do we. */
export async function listNetworks(store: Store, filters: string[] = []): Promise<NetworkRow[]> {
  if (!store.readOnly) await store.networks.sweep();
  const nets = store.networks.list();
  const rows: NetworkRow[] = nets.map((n) => ({ ID: n.Id.slice(0, 12), Name: n.Name, Driver: n.Driver, Scope: 'local', Internal: n.Internal, Subnet: n.Subnet, Containers: Object.keys(n.endpoints).length }));
  if (!nets.some((n) => n.Builtin)) rows.push({ ID: '', Name: 'bridge', Driver: 'bridge', Scope: 'local', Internal: false, Subnet: '', Containers: 0 });
  rows.push({ ID: '', Name: 'host', Driver: 'host', Scope: 'local', Internal: false, Subnet: '', Containers: 0 }, { ID: '', Name: 'none', Driver: 'null', Scope: 'local', Internal: false, Subnet: '', Containers: 0 });
  const f = filters.map((x) => x.split(/=(.*)/s) as [string, string?]);
  for (const [k] of f) if (!['name', 'driver', 'id', 'type'].includes(k)) throw new UsageError(`--filter ${k}: network filters are name, driver, id and type (builtin|custom)`);
  return rows
    .filter((r) => f.every(([k, v = '']) => (k === 'name' ? r.Name.includes(v) : k === 'driver' ? r.Driver === v : k === 'id' ? r.ID.startsWith(v) : (v === 'builtin') === RESERVED_NETWORKS.includes(r.Name))))
    .sort((a, b) => byText(a.Name, b.Name));
}

export function inspectNetwork(store: Store, ref: string): Record<string, unknown> {
  const n = ref === 'bridge' ? store.networks.list().find((x) => x.Builtin) : store.networks.get(ref);
  if (!n) {
    if (RESERVED_NETWORKS.includes(ref)) return { Name: ref, Id: '', Driver: ref === 'none' ? 'null' : ref, Scope: 'local', Containers: {} };
    throw new TsbuildError('NETWORK_NOT_FOUND', `network ${ref} not found (tsbuild network ls lists them)`);
  }
  const names = new Map(store.containers.list().map((c) => [c.id, c.name]));
  return {
    Name: n.Name, Id: n.Id, Created: n.Created, Scope: 'local', Driver: n.Driver, EnableIPv6: false,
    IPAM: { Driver: 'default', Config: [{ Subnet: n.Subnet, Gateway: n.Gateway }] },
    Internal: n.Internal,
    Containers: Object.fromEntries(Object.values(n.endpoints).map((e) => [e.container, { Name: names.get(e.container) ?? e.names[0], MacAddress: e.mac, IPv4Address: `${e.ip}/${n.Subnet.split('/')[1]}`, Aliases: e.names.slice(1) }])),
    Options: n.Driver === 'bridge' ? { 'com.docker.network.bridge.name': n.Bridge } : { parent: n.Bridge },
    Labels: n.Labels,
  };
}

/** Removes user networks no running container is on. */
export async function pruneNetworks(store: Store): Promise<string[]> {
  await store.networks.sweep();
  const gone: string[] = [];
  for (const n of store.networks.list()) {
    if (n.Builtin || Object.keys(n.endpoints).length > 0) continue;
    await store.networks.remove(n.Name);
    gone.push(n.Name);
  }
  return gone;
}

/** Joins a container to a network: now if it runs (as its owner), and at every later start. */
export async function connectNetwork(store: Store, network: string, ref: string, o: { aliases?: string[] } = {}): Promise<void> {
  const c = store.containers.find(ref);
  const cfg = c.config;
  if (!cfg) throw new TsbuildError('CONTAINER_CONFIG', `container ${ref} has no run configuration`);
  if (!store.networks.get(network) && network !== 'bridge') throw new TsbuildError('NETWORK_NOT_FOUND', `network ${network} not found: create it with tsbuild network create ${network}`);
  if (cfg.network === 'host' || cfg.network === 'none' || cfg.network.startsWith('container:')) throw new UsageError(`container ${ref} uses --network ${cfg.network}: it cannot join other networks`);
  if (cfg.network === network || (cfg.extraNetworks ?? []).some((n) => n.network === network)) throw new TsbuildError('ALREADY_CONNECTED', `container ${ref} is already connected to network ${network}`);
  if (c.status === 'running' && c.pid) {
    await store.networks.connect(c.id, network, { name: c.name, aliases: o.aliases, owner: { pid: c.pid, start: c.pidStart ?? 0 } });
    if (store.networks.get(network)?.Driver === 'bridge') await ensureDns(store);
  }
  store.containers.update(c.id, (cur) => ({ config: { ...cur.config!, extraNetworks: [...(cur.config!.extraNetworks ?? []), { network, aliases: o.aliases }] } }));
}

export async function disconnectNetwork(store: Store, network: string, ref: string): Promise<void> {
  const c = store.containers.find(ref);
  const cfg = c.config;
  if (!cfg) throw new TsbuildError('CONTAINER_CONFIG', `container ${ref} has no run configuration`);
  const primary = cfg.network === network;
  if (!primary && !(cfg.extraNetworks ?? []).some((n) => n.network === network)) throw new TsbuildError('NOT_CONNECTED', `container ${ref} is not connected to network ${network}`);
  if (c.status === 'running') await store.networks.disconnect(c.id, network);
  store.containers.update(c.id, (cur) => {
    const extra = (cur.config!.extraNetworks ?? []).filter((n) => n.network !== network);
    if (!primary) return { config: { ...cur.config!, extraNetworks: extra } };
    // Off its first network: the next one takes its place (its ports, bound there, go), or none is left.
    const [next, ...rest] = extra;
    return {
      config: { ...cur.config!, network: next?.network ?? 'none', aliases: next?.aliases, extraNetworks: rest, ports: undefined, ip: undefined, mac: undefined },
      ...(cur.network && primary ? { network: undefined } : {}),
    };
  });
}
