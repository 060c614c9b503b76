/** `tsbuild volume create|ls|inspect|rm|prune`, as Docker's. */
import { confirmed, DECLINED } from './ask.js';
import { createVolume, humanSize, inspectVolume, listVolumes, pruneVolumes, removeVolume, table } from '../app/index.js';
import { UsageError } from '../errors/index.js';
import { flagBool, flagList, flagStr, printInspect, eachObject, storeFrom, type FlagSpec, type Parsed, templateFormat } from './args.js';
import { commonFlags, formatFlag } from './images.js';
import { formatRows } from './template.js';

export const volumeCreateFlags: FlagSpec[] = [
  ...commonFlags,
  { name: 'driver', short: 'd', type: 'string', arg: 'local', help: 'volume driver (only local)' },
  { name: 'opt', short: 'o', type: 'list', arg: 'KEY=VALUE', help: 'driver options: type=tmpfs|none, device=…, o=… (e.g. o=bind or o=size=100m)' },
  { name: 'label', type: 'list', arg: 'KEY=VALUE', help: 'a label on the volume' },
];
export const volumeLsFlags: FlagSpec[] = [
  ...commonFlags,
  { name: 'quiet', short: 'q', type: 'bool', help: 'only names' },
  { name: 'filter', short: 'f', type: 'list', arg: 'dangling=true|name=…|label=…|driver=local', help: 'only matching volumes' },
  formatFlag,
];
export const volumeInspectFlags: FlagSpec[] = [...commonFlags, { ...formatFlag, short: 'f' }];
export const volumeRmFlags: FlagSpec[] = [...commonFlags, { name: 'force', short: 'f', type: 'bool', help: 'no error for a volume that does not exist' }];
export const volumePruneFlags: FlagSpec[] = [
  ...commonFlags,
  { name: 'all', short: 'a', type: 'bool', help: 'named volumes too, not only anonymous ones' },
  { name: 'force', short: 'f', type: 'bool', help: 'do not ask on a terminal' },
  { name: 'filter', type: 'list', arg: 'label=…', help: 'only matching volumes' },
];

export async function volumeCreateCommand(p: Parsed): Promise<number> {
  if (p.positional.length > 1) throw new UsageError('volume create takes at most one name: tsbuild volume create [OPTIONS] [NAME]');
  const v = createVolume(await storeFrom(p), p.positional[0], { driver: flagStr(p, 'driver'), options: flagList(p, 'opt'), labels: flagList(p, 'label') });
  process.stdout.write(`${v.Name}\n`);
  return 0;
}

export async function volumeLsCommand(p: Parsed): Promise<number> {
  const format = templateFormat(p);
  const rows = listVolumes(await storeFrom(p), flagList(p, 'filter'), format?.includes('.Size') ?? false);
  if (format !== undefined) {
    process.stdout.write(formatRows(format, rows.map((v) => ({ Name: v.Name, Driver: v.Driver, Mountpoint: v.Mountpoint, Scope: v.Scope, Links: String(v.Links), Size: v.Size < 0 ? 'N/A' : humanSize(v.Size), Labels: Object.entries(v.Labels).map(([k, x]) => `${k}=${x}`).join(',') }))));
  } else if (flagBool(p, 'quiet')) process.stdout.write(rows.map((v) => `${v.Name}\n`).join(''));
  else process.stdout.write(table([['DRIVER', 'VOLUME NAME'], ...rows.map((v) => [v.Driver, v.Name])]));
  return 0;
}

export async function volumeInspectCommand(p: Parsed): Promise<number> {
  if (p.positional.length === 0) throw new UsageError('volume inspect needs a volume name: tsbuild volume inspect NAME [NAME...]');
  const store = await storeFrom(p);
  printInspect(p, p.positional.map((n) => inspectVolume(store, n)));
  return 0;
}

export async function volumeRmCommand(p: Parsed): Promise<number> {
  if (p.positional.length === 0) throw new UsageError('volume rm needs a volume name: tsbuild volume rm NAME [NAME...]');
  const store = await storeFrom(p);
  return eachObject(p.positional, (n) => removeVolume(store, n, { force: flagBool(p, 'force') }));
}

export async function volumePruneCommand(p: Parsed): Promise<number> {
  if (!(await confirmed(p, `This will remove ${flagBool(p, 'all') ? 'all' : 'anonymous'} local volumes not used by at least one container.`))) return DECLINED;
  const r = pruneVolumes(await storeFrom(p), { all: flagBool(p, 'all'), filters: flagList(p, 'filter') });
  if (r.removed.length > 0) process.stdout.write(`Deleted Volumes:\n${r.removed.map((n) => `${n}\n`).join('')}\n`);
  process.stdout.write(`Total reclaimed space: ${humanSize(r.bytes)}\n`);
  return 0;
}
