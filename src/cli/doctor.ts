/** `tsbuild doctor [--repair] [--quick]`: check the store as `git fsck` does, and repair what can be. */
import { doctor, storeRoot } from '../app/index.js';
import { flagBool, flagStr, helpFlag, rootFlag, type FlagSpec, type Parsed } from './args.js';

export const doctorFlags: FlagSpec[] = [
  rootFlag,
  { name: 'snapshotter', type: 'string', arg: 'driver', help: 'the snapshotter whose snapshots are checked (default: the store\'s)' },
  { name: 'repair', type: 'bool', help: 'restore or rebuild what is damaged (when no other tsbuild command uses the store)' },
  { name: 'quick', type: 'bool', help: 'do not hash every blob (records, images and snapshots only)' },
  { name: 'format', type: 'string', arg: 'text|json', help: 'output format' },
  helpFlag,
];

export async function doctorCommand(p: Parsed): Promise<number> {
  const repair = flagBool(p, 'repair');
  const r = await doctor(storeRoot(flagStr(p, 'root')), { repair, blobs: !flagBool(p, 'quick'), driver: flagStr(p, 'snapshotter') ?? process.env.TSBUILD_SNAPSHOTTER });
  const left = r.findings.filter((f) => !f.repaired);
  if (flagStr(p, 'format') === 'json') {
    process.stdout.write(JSON.stringify(r, null, 2) + '\n');
    return left.length ? 1 : 0;
  }
  for (const f of r.findings) {
    process.stdout.write(`${f.repaired ? 'repaired' : 'damaged '}  ${f.path}: ${f.problem}\n`);
    if (f.repaired) process.stdout.write(`          → ${f.repaired}\n`);
    else if (f.fix) process.stdout.write(`          → ${f.fix}\n`);
  }
  const c = r.checked;
  const what = `${c.records} records, ${c.blobs ? `${c.blobs} blobs, ` : ''}${c.images} images, ${c.snapshots} snapshots`;
  if (r.findings.length === 0) process.stdout.write(`store is consistent: checked ${what}\n`);
  else process.stdout.write(`${r.findings.length - left.length} repaired, ${left.length} left (checked ${what})\n`);
  return left.length ? 1 : 0;
}
