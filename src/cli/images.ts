/** `images`, `inspect`, `rmi`, `ps`, `rm`: looking at and cleaning the store. */
import fs from 'node:fs';
import { formatRows } from './template.js';
import type { Readable } from 'node:stream';
import { layerInsight, type Store, containerStats, diskUsage, diskUsageVerbose, statusText, loadImages, humanSize, ago, imageHistory, inspectContainer, containerSize, isContainer, pruneContainers, listVolumes, pruneNetworks, pruneVolumes, inspectImage, prune, pruneImages, saveImage, type HistoryRow, listImages, removeImages, table, parseImageFilters, filterImages } from '../app/index.js';
import { UsageError } from '../errors/index.js';
import { confirmed, DECLINED } from './ask.js';
import { flagBool, flagList, flagStr, helpFlag, rootFlag, storeFrom, untilFilter, type FlagSpec, type Parsed, templateFormat } from './args.js';

export const commonFlags: FlagSpec[] = [rootFlag, helpFlag];
export const rmiFlags: FlagSpec[] = [
  ...commonFlags, { name: 'force', short: 'f', type: 'bool', help: 'remove even if a container uses it' },
  { name: 'no-prune', type: 'bool', help: 'keep the layers no image needs any more until the next prune' },
];
export const formatFlag: FlagSpec = { name: 'format', type: 'string', arg: 'TEMPLATE', help: "Go-template output, e.g. '{{.ID}} {{.Size}}', 'table {{.Repository}}\\t{{.Tag}}' or '{{json .}}'" };
export const imagesFlags: FlagSpec[] = [
  ...commonFlags, { name: 'quiet', short: 'q', type: 'bool', help: 'only ids' }, formatFlag,
  { name: 'filter', short: 'f', type: 'list', arg: 'dangling=…|reference=…|label=…|before=…|since=…', help: 'only images that match (repeatable)' },
  { name: 'no-trunc', type: 'bool', help: 'full image ids' },
  { name: 'digests', type: 'bool', help: 'show the manifest digest' },
  { name: 'all', short: 'a', type: 'bool', help: 'intermediate images too: tsbuild keeps none (its build cache holds layers, not images), so the same list' },
];
export const inspectFlags: FlagSpec[] = [
  ...commonFlags, { ...formatFlag, short: 'f' }, { name: 'type', type: 'string', arg: 'image|container', help: 'only look for this kind of object' },
  { name: 'layers', type: 'bool', help: "an image's layers: size, the step that made each, files added, changed and removed, the biggest files" },
  { name: 'size', short: 's', type: 'bool', help: "a container's SizeRw (what it wrote) and SizeRootFs (that plus its image)" },
];

export async function imagesCommand(p: Parsed): Promise<number> {
  const filters = parseImageFilters(flagList(p, 'filter'));
  const store = await storeFrom(p);
  // A damaged image does not hide the others: it is named, with the repair, on stderr.
  const all = listImages(store, { onBroken: (name, e) => process.stderr.write(`WARNING: image ${name} cannot be read: ${e.message}\n`) });
  if (p.positional.length > 1) throw new UsageError(`images takes at most one REPOSITORY[:TAG], got ${p.positional.length}: ${p.positional.join(' ')}`);
  // `images REPO[:TAG]` narrows the listing as a reference filter does, on top of any --filter.
  const named = p.positional[0];
  const filtered = filterImages(store, all, filters);
  const images = named === undefined ? filtered : filterImages(store, filtered, parseImageFilters([`reference=${named}`]));
  const id = (i: (typeof images)[number]) => (flagBool(p, 'no-trunc') ? i.id : i.id.slice(7, 19));
  const format = templateFormat(p);
  if (format !== undefined) {
    process.stdout.write(formatRows(format, images.map((i) => {
      const at = i.name?.lastIndexOf(':') ?? -1;
      return { Repository: i.name ? i.name.slice(0, at) : '<none>', Tag: i.name ? i.name.slice(at + 1) : '<none>', ID: id(i), Digest: i.manifestDigest, CreatedAt: i.created ?? '', CreatedSince: ago(i.created), Size: humanSize(i.size) };
    })));
    return 0;
  }
  if (flagBool(p, 'quiet')) {
    process.stdout.write(images.map((i) => id(i) + '\n').join(''));
    return 0;
  }
  const digests = flagBool(p, 'digests');
  const rows = [['REPOSITORY', 'TAG', ...(digests ? ['DIGEST'] : []), 'IMAGE ID', 'CREATED', 'SIZE']];
  for (const i of images) {
    const at = i.name?.lastIndexOf(':') ?? -1;
    rows.push([i.name ? i.name.slice(0, at) : '<none>', i.name ? i.name.slice(at + 1) : '<none>', ...(digests ? [i.manifestDigest] : []), id(i), ago(i.created), humanSize(i.size)]);
  }
  process.stdout.write(table(rows));
  return 0;
}

export async function inspectCommand(p: Parsed): Promise<number> {
  if (p.positional.length === 0) throw new UsageError('inspect needs an image or a container: tsbuild inspect NAME [NAME...]');
  const s = await storeFrom(p);
  if (flagBool(p, 'layers')) return inspectLayers(p, s);
  const type = flagStr(p, 'type');
  if (type !== undefined && type !== 'image' && type !== 'container') throw new UsageError(`--type ${type}: use image or container`);
  // As Docker: a container of that name first, then an image, unless --type says which.
  const all: Record<string, unknown>[] = [];
  for (const ref of p.positional) {
    if (type === 'container' || (type !== 'image' && isContainer(s, ref))) all.push({ ...inspectContainer(s, ref), ...(flagBool(p, 'size') ? await containerSize(s, ref) : {}) });
    else all.push(inspectImage(s, ref) as Record<string, unknown>);
  }
  const format = templateFormat(p);
  process.stdout.write(format !== undefined ? formatRows(format, all) : JSON.stringify(all, null, 2) + '\n');
  return 0;
}

async function inspectLayers(p: Parsed, s: Store): Promise<number> {
  const format = flagStr(p, 'format');
  for (const ref of p.positional) {
    const layers = await layerInsight(s, ref);
    if (format === 'json') {
      process.stdout.write(`${JSON.stringify(layers, null, 2)}\n`);
      continue;
    }
    if (format !== undefined) {
      process.stdout.write(formatRows(format, layers.map((l) => ({ ...l, Digest: l.digest, Size: humanSize(l.size), CreatedBy: l.createdBy }))));
      continue;
    }
    const rows = [['LAYER', 'SIZE', 'ADDED', 'CHANGED', 'REMOVED', 'CREATED BY']];
    for (const l of layers) rows.push([l.digest.slice(7, 19), humanSize(l.size), String(l.added), String(l.changed), String(l.removed), l.createdBy.replace(/^\/bin\/sh -c /, '').slice(0, 60)]);
    const biggest = layers.flatMap((l, i) => l.biggest.slice(0, 3).map((b) => `  layer ${i + 1}: ${humanSize(b.size).padStart(9)}  ${b.path}`));
    process.stdout.write(`${layers.length > 1 || p.positional.length > 1 ? `${ref}\n` : ''}${table(rows)}biggest files:\n${biggest.join('\n')}\n`);
  }
  return 0;
}

export async function rmiCommand(p: Parsed): Promise<number> {
  if (p.positional.length === 0) throw new UsageError('rmi needs an image: tsbuild rmi IMAGE [IMAGE...]');
  await removeImages(await storeFrom(p), p.positional, {
    force: flagBool(p, 'force'),
    prune: !flagBool(p, 'no-prune'),
    onUntag: (n) => process.stdout.write(`Untagged: ${n}\n`),
    onDelete: (id) => process.stdout.write(`Deleted: ${id}\n`),
  });
  return 0;
}

export const statsFlags: FlagSpec[] = [...commonFlags, { name: 'no-stream', type: 'bool', help: 'print one sample and exit' }];

function statsTable(list: Awaited<ReturnType<typeof containerStats>>): string {
  const rows = [['CONTAINER ID', 'NAME', 'CPU %', 'MEM USAGE / LIMIT', 'MEM %', 'NET I/O', 'BLOCK I/O', 'PIDS']];
  for (const s of list) {
    const mem = `${humanSize(s.memoryBytes)} / ${humanSize(s.memoryLimitOrTotal)}`;
    rows.push([s.id.slice(0, 12), s.name, `${s.cpuPercent.toFixed(2)}%`, mem, `${((s.memoryBytes / s.memoryLimitOrTotal) * 100).toFixed(2)}%`, '--', `${humanSize(s.readBytes)} / ${humanSize(s.writeBytes)}`, String(s.pids)]);
  }
  return table(rows);
}

/** `tsbuild stats`: as `docker stats`, refreshed every second until Ctrl-C, or once with --no-stream. */
export async function statsCommand(p: Parsed): Promise<number> {
  const s = await storeFrom(p);
  if (flagBool(p, 'no-stream')) {
    process.stdout.write(statsTable(await containerStats(s, p.positional)));
    return 0;
  }
  let stop = false;
  const onSig = () => (stop = true);
  process.once('SIGINT', onSig);
  try {
    while (!stop) {
      const t = statsTable(await containerStats(s, p.positional));
      process.stdout.write(process.stdout.isTTY ? `\x1b[2J\x1b[H${t}` : t);
    }
  } finally {
    process.off('SIGINT', onSig);
  }
  return 0;
}

export const historyFlags: FlagSpec[] = [
  ...commonFlags, { name: 'no-trunc', type: 'bool', help: 'do not truncate output' }, { name: 'quiet', short: 'q', type: 'bool', help: 'only ids' }, formatFlag,
  { name: 'human', short: 'H', type: 'bool', help: 'human sizes and times (default true; --human=false: bytes and RFC 3339 times)' },
];

/** `tsbuild history IMAGE`: as `docker history`, newest first; `<missing>` for entries without a layer id. */
export async function historyCommand(p: Parsed): Promise<number> {
  if (p.positional.length !== 1) throw new UsageError('history needs one image: tsbuild history IMAGE');
  const rows = imageHistory(await storeFrom(p), p.positional[0]!);
  const full = flagBool(p, 'no-trunc');
  const id = (r: HistoryRow) => (r.id ? (full ? r.id : r.id.slice(7, 19)) : '<missing>');
  // As Docker's: on unless --human=false, which gives exact bytes and the recorded times.
  const human = p.flags.get('human') !== false;
  const size = (r: HistoryRow) => (human ? humanSize(r.size) : String(r.size));
  const when = (r: HistoryRow) => (human ? ago(r.created) : (r.created ?? ''));
  if (flagBool(p, 'quiet')) {
    process.stdout.write(rows.map((r) => id(r) + '\n').join(''));
    return 0;
  }
  const format = templateFormat(p);
  if (format !== undefined) {
    process.stdout.write(formatRows(format, rows.map((r) => ({ ID: id(r), CreatedAt: r.created ?? '', CreatedSince: ago(r.created), CreatedBy: r.createdBy, Size: size(r), Comment: r.comment }))));
    return 0;
  }
  const by = (s: string) => (full || s.length <= 45 ? s : s.slice(0, 44) + '…');
  process.stdout.write(table([['IMAGE', human ? 'CREATED' : 'CREATED AT', 'CREATED BY', 'SIZE', 'COMMENT'], ...rows.map((r) => [id(r), when(r), by(r.createdBy), size(r), r.comment])]));
  return 0;
}

export const saveFlags: FlagSpec[] = [
  ...commonFlags,
  { name: 'output', short: 'o', type: 'string', arg: 'FILE', help: 'write to a file (default: standard output, if it is not a terminal)' },
  { name: 'format', type: 'string', arg: 'docker|oci', help: 'archive format (default docker)' },
  { name: 'platform', type: 'string', arg: 'os/arch[/variant]', help: "which platform's image of a multi-platform one (default: this machine's)" },
];

/** `tsbuild save [-o FILE] IMAGE`: a Docker archive (`docker load` and `podman load` read it), or OCI. */
export async function saveCommand(p: Parsed, signal: AbortSignal): Promise<number> {
  if (p.positional.length !== 1) throw new UsageError('save takes one image: tsbuild save -o FILE IMAGE (one image per archive for now)');
  const format = flagStr(p, 'format') ?? 'docker';
  if (format !== 'docker' && format !== 'oci') throw new UsageError(`--format ${format}: use docker or oci`);
  const output = flagStr(p, 'output') ?? '-';
  if (output === '-' && process.stdout.isTTY) throw new UsageError('cowardly refusing to write an archive to a terminal: give -o FILE or redirect the output');
  await saveImage(await storeFrom(p), { image: p.positional[0]!, output, format, stdout: process.stdout, platform: flagStr(p, 'platform') }, { signal });
  return 0;
}

export const pruneImagesFlags: FlagSpec[] = [
  ...commonFlags,
  { name: 'all', short: 'a', type: 'bool', help: 'remove every image no container uses, not only untagged ones' },
  { name: 'force', short: 'f', type: 'bool', help: 'do not ask on a terminal' },
  { name: 'filter', type: 'list', arg: 'until=DURATION', help: 'only images stored longer ago than this (e.g. until=24h)' },
];

/** `tsbuild image prune`: untagged images (with -a, all unused ones), then whatever nothing needs. */
export async function imagePruneCommand(p: Parsed): Promise<number> {
  const all = flagBool(p, 'all');
  if (!(await confirmed(p, all ? 'This will remove all images without at least one container associated to them.' : 'This will remove all dangling images.'))) return DECLINED;
  const r = await pruneImages(await storeFrom(p), { all, untilMs: untilFilter(p) });
  if (r.untagged.length + r.deleted.length > 0) {
    process.stdout.write(`Deleted Images:\n${r.untagged.map((n) => `untagged: ${n}\n`).join('')}${r.deleted.map((id) => `deleted: ${id}\n`).join('')}\n`);
  }
  process.stdout.write(`Total reclaimed space: ${humanSize(r.bytes)}\n`);
  return 0;
}

/** `tsbuild system df`: images, containers, volumes and build cache, as Docker's table. */
export const dfFlags: FlagSpec[] = [...commonFlags, { name: 'verbose', short: 'v', type: 'bool', help: 'per image, container and cache record, and what holds each snapshot and blob' }, formatFlag];

/** `system df -v`: Docker's four sections, then tsbuild's accounting (what GC would remove, and why the rest stays). */
async function dfVerbose(p: Parsed): Promise<number> {
  const store = await storeFrom(p);
  const v = await diskUsageVerbose(store);
  const out: string[] = ['Images space usage:', ''];
  out.push(table([['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE', 'SHARED SIZE', 'UNIQUE SIZE', 'CONTAINERS'], ...v.images.map((i) => {
    const at = i.name?.lastIndexOf(':') ?? -1;
    return [i.name ? i.name.slice(0, at) : '<none>', i.name ? i.name.slice(at + 1) : '<none>', i.id.slice(7, 19), ago(i.created), humanSize(i.size), humanSize(i.shared), humanSize(i.unique), String(i.containers)];
  })]));
  out.push('Containers space usage:', '');
  out.push(table([['CONTAINER ID', 'IMAGE', 'COMMAND', 'LOCAL VOLUMES', 'SIZE', 'CREATED', 'STATUS', 'NAMES'], ...v.containers.map(({ c, size }) => [c.id.slice(0, 12), c.image, JSON.stringify(c.command.join(' ').slice(0, 20)), String((c.config?.mounts ?? []).filter((m) => m.type === 'volume').length), humanSize(size), ago(c.created), statusText(c, ago), c.name])]));
  out.push('Local Volumes space usage:', '', table([['VOLUME NAME', 'LINKS', 'SIZE'], ...listVolumes(store, [], true).map((x) => [x.Name, String(x.Links), humanSize(x.Size)])]));
  out.push(`Build cache usage: ${humanSize(v.cache.reduce((a, c) => a + c.size, 0))}`, '');
  out.push(table([['CACHE ID', 'CACHE TYPE', 'SIZE', 'CREATED', 'LAST USED', 'SHARED', 'DESCRIPTION'], ...v.cache.map((c) => [c.id, 'regular', humanSize(c.size), ago(c.created), ago(c.lastUsed), String(c.shared), c.description])]));
  const a = v.accounting;
  const loose = [...a.snapshots.filter((x) => x.holders.length === 0).map((x) => [`snapshot ${x.key}`, humanSize(x.size)]), ...a.blobs.filter((b) => b.holders.length === 0).map((b) => [`blob ${b.digest}`, humanSize(b.size)])];
  out.push('Store accounting:', '');
  out.push(`${a.snapshots.length} snapshots and ${a.blobs.length} blobs; ${loose.length} held by nothing (the next GC, "tsbuild prune", removes them)`, '');
  out.push(table([['OBJECT', 'SIZE', 'HELD BY'], ...a.snapshots.map((x) => [`snapshot ${x.key}`, humanSize(x.size), x.holders.join('; ') || '-']), ...a.blobs.map((b) => [`blob ${b.digest}`, humanSize(b.size), b.holders.join('; ') || '-'])]));
  process.stdout.write(out.join('\n'));
  return 0;
}

export async function dfCommand(p: Parsed): Promise<number> {
  if (flagBool(p, 'verbose')) return dfVerbose(p);
  const rows = await diskUsage(await storeFrom(p));
  const pct = (a: number, b: number) => (b > 0 ? ` (${Math.round((a / b) * 100)}%)` : '');
  const format = templateFormat(p);
  if (format !== undefined) {
    // Docker's field names for `system df --format`.
    process.stdout.write(formatRows(format, rows.map((r) => ({ Type: r.type, TotalCount: r.total, Active: r.active, Size: humanSize(r.size), Reclaimable: humanSize(r.reclaimable) + pct(r.reclaimable, r.size) }))));
    return 0;
  }
  process.stdout.write(table([['TYPE', 'TOTAL', 'ACTIVE', 'SIZE', 'RECLAIMABLE'], ...rows.map((r) => [r.type, String(r.total), String(r.active), humanSize(r.size), humanSize(r.reclaimable) + pct(r.reclaimable, r.size)])]));
  return 0;
}

/** `tsbuild system prune`: stopped containers, untagged images (with -a all unused) and the build cache. */
export async function systemPruneCommand(p: Parsed): Promise<number> {
  const all = flagBool(p, 'all');
  const items = [
    'all stopped containers',
    'all networks not used by at least one container',
    ...(flagBool(p, 'volumes') ? ['all anonymous volumes not used by at least one container'] : []),
    all ? 'all images without at least one container associated to them' : 'all dangling images',
    'all build cache',
  ];
  if (!(await confirmed(p, `This will remove:\n${items.map((i) => `  - ${i}\n`).join('')}`))) return DECLINED;
  const s = await storeFrom(p);
  const containers = await pruneContainers(s, { untilMs: untilFilter(p) });
  const images = await pruneImages(s, { all, untilMs: untilFilter(p) });
  const cache = await prune(s, { all: true, untilMs: untilFilter(p) });
  // Docker's order and rules: unused networks always, anonymous volumes only with --volumes.
  const networks = await pruneNetworks(s);
  const volumes = flagBool(p, 'volumes') ? pruneVolumes(s, {}) : { removed: [], bytes: 0 };
  process.stdout.write(
    `Deleted ${containers.removed.length} containers, ${networks.length} networks, ${volumes.removed.length} volumes, ${images.deleted.length} images, ${cache.records} cache records\n` +
      `Total reclaimed space: ${humanSize(containers.bytes + images.bytes + cache.bytes + volumes.bytes)}\n`,
  );
  return 0;
}

export const loadFlags: FlagSpec[] = [
  ...commonFlags,
  { name: 'input', short: 'i', type: 'string', arg: 'FILE', help: 'read from a file (default: standard input)' },
  { name: 'quiet', short: 'q', type: 'bool', help: 'print nothing' },
  { name: 'snapshotter', type: 'string', arg: 'overlayfs', help: 'storage driver to unpack into' },
];

/** `tsbuild load [-i FILE]`: Docker (`docker save`) and OCI archives, from a file or stdin. */
export async function loadCommand(p: Parsed, signal: AbortSignal): Promise<number> {
  const file = flagStr(p, 'input') ?? p.positional[0];
  if (!file && process.stdin.isTTY) throw new UsageError('load reads an archive: give -i FILE or pipe one in (tsbuild load < image.tar)');
  let input: NodeJS.ReadableStream;
  if (file && file !== '-') {
    if (!fs.existsSync(file)) throw new UsageError(`load: ${file} does not exist`);
    input = fs.createReadStream(file);
  } else input = process.stdin;
  const loaded = await loadImages(await storeFrom(p), input as Readable, { signal });
  if (!flagBool(p, 'quiet')) {
    for (const l of loaded) process.stdout.write(l.names.length ? l.names.map((n) => `Loaded image: ${n}\n`).join('') : `Loaded image ID: ${l.id}\n`);
  }
  return 0;
}
