/**
 * `tsbuild doctor`: checks a store as `git fsck` checks a repository, and with `repair` puts right
 * what can be put right without losing anything that is still good.
 *
 * - The name table (`index.json`) and each driver's snapshot table are mirrored (`.bak`): a damaged
 *   copy is restored from the other; with neither readable, images are listed again without names
 *   and snapshots are dropped (they are unpacked again from blobs).
 * - Records that are derived (cache records and step material, build inputs, history, compression and
 *   blob-source memos): a damaged one is removed; the next build writes it again.
 * - A damaged container or network record is removed; a damaged volume record or store config is
 *   only reported (they hold the user's settings), with what to do.
 * - Every blob is hashed against its digest (skipped with `blobs: false`); a bad one is moved to
 *   `lost+found/`, so the next pull or build that produces it stores it again.
 * - Every image must reach its manifest, config and layers; snapshots must reach their parents.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ContentStore, CorruptBlobError, checkIndex, type ResolvedImage } from '../image/index.js';
import { checkMetadata } from '../snapshotter/index.js';
import { TsbuildError } from '../errors/index.js';
import { liveLeases } from './leases.js';
import { openStore, defaultDriver } from './store.js';

export interface Finding {
  /** The damaged file, or the image or snapshot. */
  path: string;
  problem: string;
  /** What `repair` did about it. */
  repaired?: string;
  /** What the user can do (when repair cannot, or was not asked). */
  fix?: string;
}

export interface DoctorReport {
  findings: Finding[];
  checked: { records: number; blobs: number; images: number; snapshots: number };
}

export interface DoctorOptions {
  repair: boolean;
  /** Hash every blob (the slow part: it reads the whole store). */
  blobs: boolean;
  driver?: string;
}

const REPAIR_HINT = 'run "tsbuild doctor --repair"';

function parses(file: string): boolean {
  try {
    JSON.parse(fs.readFileSync(file, 'utf8'));
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT'; // gone meanwhile: nothing to check
  }
}

function list(dir: string, re: RegExp): string[] {
  try {
    return fs.readdirSync(dir).filter((n) => re.test(n)).map((n) => path.join(dir, n));
  } catch {
    return [];
  }
}

type Policy = 'derived' | 'container' | 'network' | 'keep';

/** The store's JSON records, each with what repair may do to a damaged one. */
function records(root: string): [string, Policy][] {
  const j = /\.json$/;
  const out: [string, Policy][] = [];
  for (const d of ['cache/records', 'cache/steps', 'builds', 'history', 'compressed', 'registry']) for (const f of list(path.join(root, d), j)) out.push([f, 'derived']);
  for (const f of list(path.join(root, 'networks'), /^\.dns\.json$/)) out.push([f, 'derived']);
  for (const f of list(path.join(root, 'networks'), /^[^.].*\.json$/)) out.push([f, 'network']);
  for (const d of list(path.join(root, 'containers'), /^[a-f0-9]{12,64}$/)) if (fs.existsSync(path.join(d, 'state.json'))) out.push([path.join(d, 'state.json'), 'container']);
  for (const d of list(path.join(root, 'volumes'), /^[^.]/)) if (fs.existsSync(path.join(d, 'volume.json'))) out.push([path.join(d, 'volume.json'), 'keep']);
  if (fs.existsSync(path.join(root, 'config.json'))) out.push([path.join(root, 'config.json'), 'keep']);
  return out;
}

function checkRecords(root: string, repair: boolean, findings: Finding[]): number {
  const all = records(root);
  for (const [file, policy] of all) {
    if (parses(file)) continue;
    const problem = 'not valid JSON (damaged or truncated)';
    if (policy === 'keep') {
      const fix = file.endsWith('volume.json')
        ? `the volume's files are in ${path.join(path.dirname(file), '_data')}: copy them out, then remove ${path.dirname(file)} and create the volume again`
        : `correct or remove ${file} (it holds this store's defaults; see docs/storage.md)`;
      findings.push({ path: file, problem, fix });
      continue;
    }
    if (!repair) {
      findings.push({ path: file, problem, fix: REPAIR_HINT });
      continue;
    }
    if (policy === 'container') {
      fs.rmSync(path.dirname(file), { recursive: true, force: true });
      findings.push({ path: file, problem, repaired: 'the container record was removed (its layer goes with the next prune)' });
    } else {
      fs.rmSync(file, { force: true });
      findings.push({ path: file, problem, repaired: policy === 'network' ? 'the network record was removed: create the network again' : 'removed: it is derived, and written again when next needed' });
    }
  }
  return all.length;
}

/** Hashes every blob; a bad one goes to lost+found/ with repair. */
async function checkBlobs(content: ContentStore, root: string, repair: boolean, findings: Finding[]): Promise<number> {
  const blobs = content.blobs();
  for (const b of blobs) {
    const bad = await content.checkBlob(b.digest);
    if (!bad) continue;
    const file = content.blobPath(b.digest);
    const problem = bad instanceof CorruptBlobError ? 'does not match its digest (a flipped bit or a torn write)' : bad.message;
    if (!repair) {
      findings.push({ path: file, problem, fix: `${REPAIR_HINT} (moves it to lost+found/), then pull or rebuild the image that uses it` });
      continue;
    }
    const lost = path.join(root, 'lost+found');
    fs.mkdirSync(lost, { recursive: true });
    fs.renameSync(file, path.join(lost, b.digest.replace(':', '-')));
    findings.push({ path: file, problem, repaired: `moved to ${lost}: the next pull or build that produces ${b.digest} stores it again` });
  }
  return blobs.length;
}

export async function doctorStore(root: string, o: DoctorOptions): Promise<DoctorReport> {
  if (!fs.existsSync(root)) throw new TsbuildError('STORE_ROOT', `there is no store at ${root}: give the store with --root or TSBUILD_ROOT`);
  if (o.repair) {
    const others = liveLeases(root);
    if (others.since !== undefined) throw new TsbuildError('STORE_BUSY', `another tsbuild command is building or pulling into ${root}: run "tsbuild doctor --repair" when it has finished`);
  }
  const findings: Finding[] = [];
  const checked = { records: 0, blobs: 0, images: 0, snapshots: 0 };
  // The tables first: nothing else can be read without them.
  const content = new ContentStore(root);
  const idx = checkIndex(content, o.repair);
  if (idx.problem) findings.push({ path: idx.file, problem: idx.problem, repaired: idx.repaired, fix: idx.repaired ? undefined : REPAIR_HINT });
  for (const d of list(path.join(root, 'snapshots'), /^[a-z0-9]+$/)) {
    const m = checkMetadata(d, o.repair);
    if (m.problem) findings.push({ path: m.file, problem: m.problem, repaired: m.repaired, fix: m.repaired ? undefined : REPAIR_HINT });
  }
  checked.records = checkRecords(root, o.repair, findings) + 1;
  if (o.blobs) checked.blobs = await checkBlobs(content, root, o.repair, findings);
  if (idx.problem && !idx.repaired) return { findings, checked };
  // Recovery (dead processes' mounts and snapshots, orphan snapshot objects) only when repairing.
  const store = await openStore(root, o.driver ?? defaultDriver(root), { recover: o.repair ? 'always' : false });
  const images = [...content.list(), ...content.dangling().map((manifest) => ({ name: '', manifest }))];
  for (const r of images) {
    checked.images++;
    const label = r.name || `${r.manifest.digest.slice(0, 19)} (unnamed)`;
    let img: ResolvedImage;
    try {
      img = content.resolve(r.name || r.manifest.digest);
    } catch (e) {
      if (o.repair && !r.name) {
        content.removeDangling(r.manifest.digest);
        findings.push({ path: `image ${label}`, problem: (e as Error).message, repaired: 'the unnamed image was removed from the list' });
      } else findings.push({ path: `image ${label}`, problem: (e as Error).message, fix: `pull or rebuild it; "tsbuild rmi ${r.name || r.manifest.digest}" removes it` });
      continue;
    }
    const missing = img.manifest.layers.filter((l) => !content.has(l.digest));
    if (missing.length > 0) findings.push({ path: `image ${label}`, problem: `${missing.length} layer blob(s) missing (${missing.map((l) => l.digest.slice(0, 19)).join(', ')}): it cannot be pushed or saved`, fix: `pull or rebuild it; "tsbuild rmi ${r.name || r.manifest.digest}" removes it` });
  }
  // Snapshots whose parent is gone can never be mounted: children first, as removal requires.
  const infos: { key: string; parent?: string }[] = [];
  await store.snapshotter.walk((i) => void infos.push({ key: i.key, parent: i.parent }));
  checked.snapshots = infos.length;
  const keys = new Set(infos.map((i) => i.key));
  const broken = new Set(infos.filter((i) => i.parent !== undefined && !keys.has(i.parent)).map((i) => i.key));
  for (let grew = true; grew; ) {
    grew = false;
    for (const i of infos) if (i.parent !== undefined && broken.has(i.parent) && !broken.has(i.key)) (broken.add(i.key), (grew = true));
  }
  const order = infos.filter((i) => broken.has(i.key)).sort((a, b) => depth(b.key) - depth(a.key));
  function depth(k: string): number {
    let n = 0;
    for (let p = infos.find((i) => i.key === k)?.parent; p !== undefined && n < infos.length; p = infos.find((i) => i.key === p)?.parent) n++;
    return n;
  }
  for (const i of order) {
    const where = `snapshot ${i.key} (${store.snapshotter.driver})`;
    if (!o.repair) {
      findings.push({ path: where, problem: 'its parent snapshot is gone: it can never be mounted', fix: REPAIR_HINT });
      continue;
    }
    await store.snapshotter.remove(i.key);
    findings.push({ path: where, problem: 'its parent snapshot is gone: it can never be mounted', repaired: 'removed (images using it are unpacked again from their blobs)' });
  }
  return { findings, checked };
}
