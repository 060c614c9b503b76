/**
 * COPY and ADD of local files: sources from the build context (minus .dockerignore) or another stage,
 * written into the destination snapshot with every path resolved inside the image root. Ownership is
 * 0:0 unless --chown says otherwise, modes are kept unless --chmod, and no source symlink can bring in a
 * file from outside its root.
 */
import fs from 'node:fs';
import path from 'node:path';
import { TsbuildError } from '../errors/index.js';
import type { OpContext } from '../builder/index.js';
import { mkdirInRoot, NewFileMeta, resolveInRoot } from '../fsutil/index.js';
import { IgnoreMatcher } from '../parser/index.js';
import { detectArchive, extractTar, openDecompressed, diffUpperDir, chainIDs, MediaType } from '../image/index.js';
import { parseChmod as chmodFn } from './chmod.js';
import { Downloads } from './fetch.js';
import { CopyError, GLOB, cleanSource, expandSource, isURL, keptPath, joinHost, sourceEntries, type HostPath } from './copysource.js';
import { resolveUser, layerDirs, readFileInLayers, readLayerMetaAsync, type LayerMeta } from '../runtime/index.js';
import { clearTarget, copyTo, type CopyCtx, type Owner } from './copytree.js';
import { commitState, overlayUpper, prepareStep, writableDir } from './layer.js';
import { attachCopyTimes, CopyReuse, ReuseRefused, TimesRecorder, type PreviousCopy } from './copyreuse.js';
import { SnapshotError } from '../snapshotter/index.js';
import { tempKey, unsyncedLabels, withMounted } from '../store/index.js';
import type { ContextRef, OpSpec, OpsEnv, StateRef } from './types.js';


function readEtc(root: string, file: string): string | undefined {
  try {
    return fs.readFileSync(resolveInRoot(root, file), 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * `--chown=user[:group]`, names resolved in the destination image as BuildKit does (a name alone:
 * its passwd group; a number alone: gid = uid). A name the image lacks becomes 0, with a warning
 * through `warn`: real Dockerfiles COPY one line before the `adduser`, and BuildKit builds them.
 */
export function resolveChown(spec: string, root: string, warn?: (message: string) => void): Owner {
  return resolveChownIn(spec, readEtc(root, '/etc/passwd'), readEtc(root, '/etc/group'), warn);
}

function resolveChownIn(spec: string, passwd: string | undefined, group: string | undefined, warn?: (message: string) => void): Owner {
  try {
    const u = resolveUser(spec, passwd, group, 'chown');
    if (u.unknown) warn?.(`--chown=${spec}: no ${u.unknown.join(' and no ')} in the image's /etc/passwd and /etc/group, so the files are owned by ${u.uid}:${u.gid} (as BuildKit does); create the user before this line, or use numeric ids`);
    return { uid: u.uid, gid: u.gid };
  } catch (e) {
    if (e instanceof TsbuildError) throw new CopyError(`--chown=${spec}: ${e.message}`);
    throw e;
  }
}

/** The build's downloads, or (an op run on its own) a set of its own in the op's temp dir. */
function downloadsOf(env: OpsEnv, tmp: string): Downloads {
  return env.downloads ?? new Downloads(path.join(tmp, 'downloads'), env.secrets);
}

/** Copies `srcHost` to `dstImagePath` (a path in the image), or to the entry `name` of that directory. */
function copyEntry(srcHost: HostPath, srcRel: string, dstImagePath: string, c: CopyCtx, name?: { name: string; raw?: Buffer }): void {
  if (name) return copyTo(srcHost, srcRel, joinHost(mkdirInRoot(c.dstRoot, dstImagePath, 0o755, c.owner), name), c);
  const parent = mkdirInRoot(c.dstRoot, path.posix.dirname(dstImagePath), 0o755, c.owner);
  copyTo(srcHost, srcRel, path.join(parent, path.posix.basename(dstImagePath)), c);
}

/** How one COPY writes: owner, modes, what is ignored or excluded (relative to the source being copied). */
/** A warning in the step's output, where the user sees it under the instruction. */
function warner(ctx: OpContext): (message: string) => void {
  return (m) => ctx.log('stderr', Buffer.from(`WARNING: ${m}\n`));
}

function copyContext(op: Extract<OpSpec, { kind: 'copy' }>, dstRoot: string, ignore: IgnoreMatcher | undefined, signal: AbortSignal, ownerOverride: Owner | undefined, warn: (m: string) => void, upper?: string): CopyCtx & { excludeBase: { value: string }; excludes?: IgnoreMatcher } {
  const excludes = op.excludes.length ? new IgnoreMatcher(op.excludes) : undefined;
  const excludeBase = { value: '' };
  const chmod = op.chmod ? chmodFn(op.chmod) : undefined;
  return {
    dstRoot,
    owner: ownerOverride ?? (op.chown ? resolveChown(op.chown, dstRoot, warn) : { uid: 0, gid: 0 }),
    chmod,
    modeOfFile: chmod ? (mode) => chmod(mode, false) : (mode) => mode & 0o7777,
    created: new NewFileMeta(),
    upper,
    ignored: (rel) => (ignore ? ignore.matches(rel) : false),
    // --exclude patterns match paths relative to the source being copied (BuildKit's fileop), and
    // the context-relative path too, so `--exclude=*.md dir` and `--exclude=dir/*.md dir` both work.
    excluded: (rel) => {
      if (!excludes) return false;
      if (excludes.matches(rel)) return true;
      const base = excludeBase.value;
      return base !== '' && rel.startsWith(base + '/') && excludes.matches(rel.slice(base.length + 1));
    },
    signal,
    excludeBase,
    excludes,
  };
}

/** Each local source expanded to the paths it matches (none is an error); URLs apart. */
function matchSources(op: Extract<OpSpec, { kind: 'copy' }>, srcRoot: string, c: ReturnType<typeof copyContext>): { matches: { source: string; rel: string }[]; urls: string[] } {
  const matches: { source: string; rel: string }[] = [];
  const urls: string[] = [];
  for (const s of op.sources) {
    if (op.verb === 'ADD' && isURL(s)) {
      urls.push(s);
      continue;
    }
    const rel = cleanSource(s);
    const found = expandSource(srcRoot, rel, (r) => c.ignored(r) || c.excluded(r) || (c.excludes !== undefined && c.excludes.matches(path.posix.basename(r))));
    if (found.length === 0) {
      throw new CopyError(
        GLOB.test(rel)
          ? `${op.verb} failed: no source files were specified: no file matches "${s}"`
          : `${op.verb} failed: file not found in ${op.fromContext ? 'build context or excluded by .dockerignore' : 'source stage'}: "${s}" does not exist`,
      );
    }
    matches.push(...found.map((r) => ({ source: s, rel: r })));
  }
  return { matches, urls };
}

/** The destination in the image, and whether sources go into it (a directory) or become it. */
function destination(op: Extract<OpSpec, { kind: 'copy' }>, dstRoot: string, workdir: string, total: number): { dest: string; destIsDir: boolean } {
  let dest = op.dest.startsWith('/') ? op.dest : path.posix.join(workdir || '/', op.dest);
  const destDirSyntax = op.dest.endsWith('/') || op.dest === '.' || op.dest.endsWith('/.');
  if (total > 1 && !destDirSyntax && !isDirIn(dstRoot, dest)) {
    throw new CopyError(`When using ${op.verb} with more than one source file, the destination must be a directory and end with a /`);
  }
  dest = path.posix.normalize(dest);
  const destIsDir = destDirSyntax || total > 1 || isDirIn(dstRoot, dest) || op.sources.some((s) => !isURL(s) && GLOB.test(s)) || op.parents;
  return { dest, destIsDir };
}

/** A file the step writes itself (a URL's body, a heredoc): replaced, owned and moded as COPY says. */
function writeFile(c: CopyCtx, target: string, fill: (host: string) => void, mode: number, mtime?: Date): void {
  const parent = mkdirInRoot(c.dstRoot, path.posix.dirname(target), 0o755, c.owner);
  const host = path.join(parent, path.posix.basename(target));
  clearTarget(host, false);
  fill(host);
  fs.chownSync(host, c.owner.uid, c.owner.gid);
  fs.chmodSync(host, c.chmod ? c.chmod(mode, false) : mode);
  if (mtime) fs.utimesSync(host, mtime, mtime);
}

async function copyInto(
  op: Extract<OpSpec, { kind: 'copy' }>,
  dstRoot: string,
  srcRoot: string,
  ignore: IgnoreMatcher | undefined,
  workdir: string,
  ctx: OpContext,
  ownerOverride: Owner | undefined,
  downloads: Downloads,
  reuse?: CopyReuse,
  times?: TimesRecorder,
  upper?: string,
): Promise<void> {
  const c = { ...copyContext(op, dstRoot, ignore, ctx.signal, ownerOverride, warner(ctx), upper), reuse, times };
  const { matches, urls } = matchSources(op, srcRoot, c);
  const { dest, destIsDir } = destination(op, dstRoot, workdir, matches.length + urls.length + op.contents.length);
  const extractInto = async (file: string, kind: Awaited<ReturnType<typeof detectArchive>>) => {
    const into = mkdirInRoot(dstRoot, dest, 0o755, c.owner);
    await extractTar(openDecompressed(file, kind!), into, { owner: op.chown ? c.owner : undefined, onWarning: (m) => ctx.status(m) });
  };
  for (const { source, rel } of matches) {
    const host = rel === '' ? srcRoot : resolveInRoot(srcRoot, rel, true, op.fromContext ? 'in the build context' : 'in the --from source');
    const st = fs.statSync(host);
    const base = op.parents ? path.posix.join(dest, keptPath(source, rel)) : dest;
    c.excludeBase.value = st.isDirectory() ? rel : path.posix.dirname(rel) === '.' ? '' : path.posix.dirname(rel);
    if (st.isDirectory()) {
      mkdirInRoot(dstRoot, base, 0o755, c.owner);
      for (const e of sourceEntries(host)) {
        const childRel = rel === '' ? e.name : `${rel}/${e.name}`;
        if (c.ignored(childRel) || c.excluded(childRel)) continue;
        copyEntry(joinHost(host, e), childRel, base, c, e);
      }
      continue;
    }
    const kind = op.verb === 'ADD' && op.unpack !== false && st.isFile() ? await detectArchive(host) : undefined;
    if (kind) await extractInto(host, kind);
    else copyEntry(host, rel, op.parents ? base : destIsDir ? path.posix.join(dest, path.posix.basename(rel)) : dest, c);
  }
  for (const url of urls) {
    const got = await downloads.get(url, op.checksum, ctx.signal);
    const kind = op.unpack === true ? await detectArchive(got.file) : undefined;
    if (kind) await extractInto(got.file, kind);
    else writeFile(c, destIsDir ? path.posix.join(dest, got.name) : dest, (h) => fs.copyFileSync(got.file, h), 0o600, got.mtime);
  }
  for (const content of op.contents) {
    writeFile(c, destIsDir ? path.posix.join(dest, content.path) : dest, (h) => fs.writeFileSync(h, content.data, { mode: 0o644 }), 0o644);
  }
}

function isDirIn(root: string, p: string): boolean {
  try {
    return fs.statSync(resolveInRoot(root, p)).isDirectory();
  } catch {
    return false;
  }
}

export async function copyOp(
  env: OpsEnv,
  op: Extract<OpSpec, { kind: 'copy' }>,
  dst: StateRef,
  src: StateRef | ContextRef,
  ctx: OpContext,
  previous?: PreviousCopy,
): Promise<StateRef> {
  const workdir = '/';
  if (op.link) return linkedCopy(env, op, dst, src, ctx);
  if (previous && src.kind === 'context') {
    const out = await copyOnPrevious(env, op, dst, src, ctx, previous);
    if (out) return out;
  }
  const key = tempKey('active', 'copy');
  const mounts = await prepareStep(env, key, dst.snapshot);
  let committed = false;
  let viewKey: string | undefined;
  const tmp = fs.mkdtempSync(path.join(env.storeRoot, 'tmp', `add-${process.pid}-`));
  let times: TimesRecorder | undefined;
  const upper = overlayUpper(env, mounts);
  try {
    await withMounted(env.storeRoot, mounts, (dstRoot) => copyNamingFullDisk(env, op.dest, dstRoot, async () => {
      if (src.kind === 'context') {
        const ignore = src.ignore.length ? new IgnoreMatcher(src.ignore) : undefined;
        // For the step's next COPY written on this result (only a plain COPY from the context is).
        if (op.verb === 'COPY' && op.contents.length === 0 && !op.parents) times = new TimesRecorder(dstRoot, upper);
        await copyInto(op, dstRoot, src.dir, ignore, workdir, ctx, undefined, downloadsOf(env, tmp), undefined, times, upper);
      } else if (src.snapshot) {
        viewKey = tempKey('view', 'copy-from');
        const vm = await env.snapshotter.view(viewKey, src.snapshot);
        await withMounted(env.storeRoot, vm, (srcRoot) => copyInto(op, dstRoot, srcRoot, undefined, workdir, ctx, undefined, downloadsOf(env, tmp), undefined, undefined, upper));
      } else {
        await copyInto(op, dstRoot, tmp, undefined, workdir, ctx, undefined, downloadsOf(env, tmp), undefined, undefined, upper);
      }
    }, upper));
    const out = await commitState(env, key, dst, op.history, { created: env.created, created_by: op.createdBy, comment: 'buildkit.dockerfile.v0' });
    committed = true;
    attachCopyTimes(out, times?.result(out.snapshot));
    return out;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (viewKey) await env.snapshotter.remove(viewKey).catch(() => undefined);
    if (!committed) await env.snapshotter.remove(key).catch(() => undefined);
  }
}

/**
 * The COPY written on the previous result of the same step (copyreuse.ts), or undefined when that
 * cannot give exactly what a full copy gives (the caller then copies in full).
 */
async function copyOnPrevious(env: OpsEnv, op: Extract<OpSpec, { kind: 'copy' }>, dst: StateRef, src: ContextRef, ctx: OpContext, previous: PreviousCopy): Promise<StateRef | undefined> {
  const key = tempKey('active', 'copy');
  let mounts;
  try {
    mounts = await prepareStep(env, key, previous.base);
  } catch (e) {
    if (e instanceof SnapshotError) return undefined;
    throw e;
  }
  let committed = false;
  const tmp = fs.mkdtempSync(path.join(env.storeRoot, 'tmp', `add-${process.pid}-`));
  try {
    const base = (await env.snapshotter.upperDir?.(previous.base))!;
    // The parent's tree, each of its snapshots' own directory (overlay: reuse is for it alone).
    const parentDirs: string[] = [];
    for (let k = dst.snapshot; k !== undefined; k = (await env.snapshotter.stat(k)).parent) parentDirs.push((await env.snapshotter.upperDir?.(k))!);
    let times: TimesRecorder | undefined;
    let baseMeta: Promise<LayerMeta> | undefined;
    const reuse = await withMounted(env.storeRoot, mounts, (dstRoot) => copyNamingFullDisk(env, op.dest, dstRoot, async () => {
      // The layer needs the full copy's xattrs: the helper lists them (a walk of every entry, 120 ms
      // for 20,000 files) while this process copies, not after it. Asked once the mount is done: the
      // helper answers one request at a time.
      baseMeta = readLayerMetaAsync(base);
      baseMeta.catch(() => undefined);
      // One turn for the request to be written: the copy below does not yield until it is done.
      await Promise.resolve();
      const reuse = new CopyReuse(dstRoot, base, previous);
      times = new TimesRecorder(dstRoot);
      await copyInto(op, dstRoot, src.dir, src.ignore.length ? new IgnoreMatcher(src.ignore) : undefined, '/', ctx, undefined, downloadsOf(env, tmp), reuse, times);
      if (reuse.mayHaveStale) reuse.removeStale(parentDirs);
      return reuse;
    }));
    const byTimes = reuse.counts.byTimes ? ` (${reuse.counts.byTimes} known unchanged by the times recorded last time)` : '';
    ctx.status(`copied only what changed: ${reuse.counts.kept} file(s) kept from this step's last full copy, ${reuse.counts.removed} removed${byTimes}`);
    const out = await commitState(env, key, dst, op.history, { created: env.created, created_by: op.createdBy, comment: 'buildkit.dockerfile.v0' }, { base: previous.base, layer: previous.baseLayer, stats: reuse.baseStats, meta: baseMeta });
    committed = true;
    attachCopyTimes(out, times?.result(out.snapshot));
    return out;
  } catch (e) {
    if (!(e instanceof ReuseRefused)) throw e;
    ctx.status(`copying in full, not on this step's last result: ${e.message}`);
    return undefined;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (!committed) await env.snapshotter.remove(key).catch(() => undefined);
  }
}

/** A full disk during a copy names the destination in the image, not the temporary mount path. */
async function copyNamingFullDisk<T>(env: OpsEnv, dest: string, mounted: string, fn: () => Promise<T>, upper?: string): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
    const file = /-> '([^']*)'/.exec((e as Error).message)?.[1];
    const root = [mounted, upper].find((r) => r !== undefined && file?.startsWith(r + '/'));
    const inImage = root !== undefined ? file!.slice(root.length) : dest;
    throw new TsbuildError('NO_SPACE', `no space left on device copying ${inImage} into the image (store at ${env.storeRoot})`, { cause: e });
  }
}

export async function mkdirOp(env: OpsEnv, op: Extract<OpSpec, { kind: 'mkdir' }>, root: StateRef): Promise<StateRef> {
  const key = tempKey('active', 'mkdir');
  const mounts = await prepareStep(env, key, root.snapshot);
  let committed = false;
  try {
    await withMounted(env.storeRoot, mounts, async (dir) => {
      const u = resolveUser(op.user, readEtc(dir, '/etc/passwd'), readEtc(dir, '/etc/group'));
      const owner = { uid: u.uid, gid: u.gid };
      mkdirInRoot(dir, op.path, 0o755, owner);
    });
    const out = await commitState(env, key, root, op.history, { created: env.created, created_by: op.createdBy, comment: 'buildkit.dockerfile.v0' });
    committed = true;
    return out;
  } finally {
    if (!committed) await env.snapshotter.remove(key).catch(() => undefined);
  }
}

/**
 * COPY/ADD --link: the files are copied into an empty snapshot, so the layer depends only on the
 * sources (the same digest whatever the base), then that layer is stacked on the parent as its own
 * overlay layer, as BuildKit's MergeOp does: nothing of the destination is followed or merged.
 */
async function linkedCopy(env: OpsEnv, op: Extract<OpSpec, { kind: 'copy' }>, dst: StateRef, src: StateRef | ContextRef, ctx: OpContext): Promise<StateRef> {
  let owner: Owner | undefined;
  if (op.chown && dst.snapshot) {
    const dirs = layerDirs(await env.snapshotter.mounts(dst.snapshot));
    owner = resolveChownIn(op.chown, readFileInLayers(dirs, '/etc/passwd'), readFileInLayers(dirs, '/etc/group'), warner(ctx));
  } else if (op.chown) owner = resolveChownIn(op.chown, undefined, undefined, warner(ctx));
  const scratch = tempKey('active', 'link');
  const tmp = fs.mkdtempSync(path.join(env.storeRoot, 'tmp', `add-${process.pid}-`));
  let viewKey: string | undefined;
  let blob: { digest: string; size: number } | undefined;
  try {
    const mounts = await env.snapshotter.prepare(scratch);
    await withMounted(env.storeRoot, mounts, (dstRoot) => copyNamingFullDisk(env, op.dest, dstRoot, async () => {
      if (src.kind === 'context') {
        await copyInto(op, dstRoot, src.dir, src.ignore.length ? new IgnoreMatcher(src.ignore) : undefined, '/', ctx, owner, downloadsOf(env, tmp));
      } else if (src.snapshot) {
        viewKey = tempKey('view', 'copy-from');
        const vm = await env.snapshotter.view(viewKey, src.snapshot);
        await withMounted(env.storeRoot, vm, (srcRoot) => copyInto(op, dstRoot, srcRoot, undefined, '/', ctx, owner, downloadsOf(env, tmp)));
      } else await copyInto(op, dstRoot, tmp, undefined, '/', ctx, owner, downloadsOf(env, tmp));
    }));
    const upper = await writableDir(env, scratch);
    if (!upper) throw new CopyError(`--link needs a snapshotter with layer diffs; ${env.snapshotter.driver} has none`);
    // A snapshot without a parent holds exactly the copied files, in any driver.
    if (fs.readdirSync(upper).length > 0) blob = await env.store.writeBlob(diffUpperDir(upper, { opaqueDirs: new Set(), sourceDateEpoch: env.sourceDateEpoch }));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (viewKey) await env.snapshotter.remove(viewKey).catch(() => undefined);
    await env.snapshotter.remove(scratch).catch(() => undefined);
  }
  const entry = { created: env.created, created_by: op.createdBy, comment: 'buildkit.dockerfile.v0' };
  if (!blob) return { ...dst, history: [...dst.history, ...op.history, { ...entry, empty_layer: true }] };
  const diffIDs = [...dst.layers.map((l) => l.diffID), blob.digest];
  const chain = chainIDs(diffIDs).at(-1)!;
  let exists = true;
  try {
    await env.snapshotter.stat(chain);
  } catch {
    exists = false;
  }
  if (!exists) {
    const key = tempKey('active', 'linkapply');
    await env.snapshotter.prepare(key, dst.snapshot);
    try {
      const upper = (await writableDir(env, key))!;
      // Stacked, not merged: a symlink of the base on the way is shadowed by a directory, as in overlay.
      await extractTar(env.store.openBlob(blob.digest), upper, { shadowSymlinks: true });
      // Written straight into the tree, not synced: settled as unpacked layers are (store/unsynced.ts).
      await env.snapshotter.commit(chain, key, unsyncedLabels());
    } catch (e) {
      await env.snapshotter.remove(key).catch(() => undefined);
      if (!(e instanceof Error && 'code' in e && (e as { code: string }).code === 'SNAPSHOT_EXISTS')) throw e;
    }
  }
  return {
    kind: 'state',
    snapshot: chain,
    layers: [...dst.layers, { diffID: blob.digest, descriptor: { mediaType: MediaType.layer, digest: blob.digest, size: blob.size } }],
    history: [...dst.history, ...op.history, entry],
  };
}
