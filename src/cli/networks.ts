/** `tsbuild network create|ls|inspect|rm|prune|connect|disconnect`, as Docker's. */
import { confirmed, DECLINED } from './ask.js';
import { connectNetwork, createNetwork, disconnectNetwork, inspectNetwork, listNetworks, pruneNetworks, table } from '../app/index.js';
import { UsageError } from '../errors/index.js';
import { flagBool, flagList, flagStr, printInspect, eachObject, storeFrom, type FlagSpec, type Parsed, templateFormat } from './args.js';
import { commonFlags, formatFlag } from './images.js';
import { formatRows } from './template.js';

export const networkCreateFlags: FlagSpec[] = [
  ...commonFlags,
  { name: 'driver', short: 'd', type: 'string', arg: 'bridge|macvlan|ipvlan', help: 'network driver (default bridge; macvlan and ipvlan need -o parent=IFACE)' },
  { name: 'subnet', type: 'string', arg: 'CIDR', help: 'IPv4 subnet (default: the first free of 10.89-10.93.0.0/16, …)' },
  { name: 'gateway', type: 'string', arg: 'IPv4', help: "the bridge's address in the subnet (default: its first)" },
  { name: 'internal', type: 'bool', help: 'no traffic in or out of the network, only between its containers' },
  { name: 'label', type: 'list', arg: 'KEY=VALUE', help: 'a label on the network' },
  { name: 'opt', short: 'o', type: 'list', arg: 'parent=IFACE', help: 'driver options: parent (macvlan, ipvlan)' },
];
export const networkLsFlags: FlagSpec[] = [
  ...commonFlags,
  { name: 'quiet', short: 'q', type: 'bool', help: 'only names' },
  { name: 'filter', short: 'f', type: 'list', arg: 'name=…|driver=…|id=…|type=builtin|custom', help: 'only matching networks' },
  formatFlag,
];
export const networkInspectFlags: FlagSpec[] = [...commonFlags, { ...formatFlag, short: 'f' }];
export const networkRmFlags: FlagSpec[] = [...commonFlags, { name: 'force', short: 'f', type: 'bool', help: 'no error for a network that does not exist' }];
export const networkPruneFlags: FlagSpec[] = [...commonFlags, { name: 'force', short: 'f', type: 'bool', help: 'do not ask on a terminal' }];
export const networkConnectFlags: FlagSpec[] = [...commonFlags, { name: 'alias', type: 'list', arg: 'NAME', help: "another name for the container on this network's DNS" }];

export async function networkCreateCommand(p: Parsed): Promise<number> {
  if (p.positional.length !== 1) throw new UsageError('network create takes one name: tsbuild network create [OPTIONS] NAME');
  const n = await createNetwork(await storeFrom(p), p.positional[0]!, {
    driver: flagStr(p, 'driver'), subnet: flagStr(p, 'subnet'), gateway: flagStr(p, 'gateway'), internal: flagBool(p, 'internal'), labels: flagList(p, 'label'), options: flagList(p, 'opt'),
  });
  process.stdout.write(`${n.Id}\n`);
  return 0;
}

export async function networkLsCommand(p: Parsed): Promise<number> {
  const rows = await listNetworks(await storeFrom(p), flagList(p, 'filter'));
  const format = templateFormat(p);
  if (format !== undefined) process.stdout.write(formatRows(format, rows.map((r) => ({ ...r, Internal: String(r.Internal), Containers: String(r.Containers) }))));
  else if (flagBool(p, 'quiet')) process.stdout.write(rows.map((r) => `${r.Name}\n`).join(''));
  else process.stdout.write(table([['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE', 'SUBNET'], ...rows.map((r) => [r.ID || '-', r.Name, r.Driver, r.Scope, r.Subnet || '-'])]));
  return 0;
}

export async function networkInspectCommand(p: Parsed): Promise<number> {
  if (p.positional.length === 0) throw new UsageError('network inspect needs a network: tsbuild network inspect NETWORK [NETWORK...]');
  const store = await storeFrom(p);
  printInspect(p, p.positional.map((n) => inspectNetwork(store, n)));
  return 0;
}

export async function networkRmCommand(p: Parsed): Promise<number> {
  if (p.positional.length === 0) throw new UsageError('network rm needs a network: tsbuild network rm NETWORK [NETWORK...]');
  const store = await storeFrom(p);
  const names = p.positional.filter((n) => !(flagBool(p, 'force') && !inspectable(store, n)));
  return eachObject(names, (n) => store.networks.remove(n));
}

/** -f: a network that does not exist is no error. */
function inspectable(store: Awaited<ReturnType<typeof storeFrom>>, n: string): boolean {
  return store.networks.get(n) !== undefined;
}

export async function networkPruneCommand(p: Parsed): Promise<number> {
  if (!(await confirmed(p, 'This will remove all custom networks not used by at least one container.'))) return DECLINED;
  const gone = await pruneNetworks(await storeFrom(p));
  if (gone.length > 0) process.stdout.write(`Deleted Networks:\n${gone.map((n) => `${n}\n`).join('')}`);
  return 0;
}

export async function networkConnectCommand(p: Parsed): Promise<number> {
  if (p.positional.length !== 2) throw new UsageError('network connect takes a network and a container: tsbuild network connect [--alias NAME] NETWORK CONTAINER');
  await connectNetwork(await storeFrom(p), p.positional[0]!, p.positional[1]!, { aliases: flagList(p, 'alias') });
  return 0;
}

export async function networkDisconnectCommand(p: Parsed): Promise<number> {
  if (p.positional.length !== 2) throw new UsageError('network disconnect takes a network and a container: tsbuild network disconnect NETWORK CONTAINER');
  await disconnectNetwork(await storeFrom(p), p.positional[0]!, p.positional[1]!);
  return 0;
}
