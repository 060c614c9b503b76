/** `tsbuild build`: Dockerfile + context → image in the local store. */
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createSolver } from '../builder/index.js';
import { DockerfileSyntaxError, TsbuildError, UsageError, errnoCode } from '../errors/index.js';
import { normalizeName, validateName } from '../image/index.js';
import { createOps, type OpResult, type OpSpec, type BuildSecrets } from '../ops/index.js';
import { CacheIndex, ChecksumMemo } from '../cache/index.js';
import type { SolverEvent } from '../builder/index.js';
import { parseDockerfile, parseDockerignore, DockerignoreError } from '../parser/index.js';
import { planBuild } from '../planner/index.js';
import { flagBool, flagList, flagStr, type FlagSpec, type Parsed, rootFlag, helpFlag } from './args.js';
import { createRenderer, type ProgressMode } from './progress.js';
import { autoGc } from './cache.js';
import { openStore, storeRoot } from './store.js';
import { compressionFlags, compressionFrom, insecureFlag, pullPolicy, resolveOrPull } from './registry.js';
import { parseOutputs, writeOutputs } from './outputs.js';
import { exportCache, importCaches, parseCacheSpecs } from './remotecache.js';

export const buildFlags: FlagSpec[] = [
  { name: 'tag', short: 't', type: 'list', arg: 'name[:tag]', help: 'name the image (repeatable)' },
  { name: 'file', short: 'f', type: 'string', arg: 'path', help: 'the Dockerfile (default: <context>/Dockerfile)' },
  { name: 'target', type: 'string', arg: 'stage', help: 'build up to this stage' },
  { name: 'build-arg', type: 'list', arg: 'KEY[=VALUE]', help: 'set a build argument (repeatable)' },
  { name: 'quiet', short: 'q', type: 'bool', help: 'print only the image id' },
  { name: 'iidfile', type: 'string', arg: 'path', help: 'write the image id to this file' },
  { name: 'progress', type: 'string', arg: 'auto|tty|plain', help: 'progress output (default auto)' },
  { name: 'network', type: 'string', arg: 'host|none', help: 'network for RUN steps (default host)' },
  { name: 'jobs', type: 'string', arg: 'N', help: 'steps run at once (default: CPUs)' },
  rootFlag,
  { name: 'snapshotter', type: 'string', arg: 'overlayfs', help: 'storage driver' },
  { name: 'secret', type: 'list', arg: 'id=ID[,src=FILE|env=VAR]', help: 'a build secret for RUN --mount=type=secret (repeatable)' },
  { name: 'ssh', type: 'list', arg: 'default|ID=SOCKET|ID=KEYFILE', help: 'an ssh agent (socket, or a key loaded into an agent started for the build) for RUN --mount=type=ssh' },
  { name: 'allow', type: 'list', arg: 'security.insecure', help: 'grant an entitlement (RUN --security=insecure)' },
  { name: 'no-cache', type: 'bool', help: 'run every step, ignoring the build cache' },
  { name: 'no-cache-filter', type: 'list', arg: 'stage', help: 'ignore the cache for this stage (repeatable)' },
  { name: 'explain', type: 'string', arg: 'text|json', help: 'print each step\'s cache key inputs and why it hit or missed' },
  { name: 'pull', type: 'bool', help: 'pull every FROM image even when the store has it (default: only missing ones; TSBUILD_PULL=never for none)' },
  { name: 'platform', type: 'string', arg: 'os/arch', help: 'platform for pulled base images (default: this machine)' },
  insecureFlag,
  { name: 'output', short: 'o', type: 'list', arg: 'type=image|registry|oci|docker|local[,dest=…][,push=true]', help: 'where the result goes (repeatable; default type=image)' },
  { name: 'cache-to', type: 'list', arg: 'type=registry,ref=R[,mode=min|max][,mounts=true]', help: 'export the build cache to a registry (repeatable)' },
  { name: 'cache-from', type: 'list', arg: 'type=registry,ref=R[,mounts=true]', help: 'use build cache from a registry (repeatable)' },
  { name: 'push', type: 'bool', help: 'push the -t names after building (same as --output type=image,push=true)' },
  ...compressionFlags,
  helpFlag,
];

function readDockerfile(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') throw new UsageError(`cannot read the Dockerfile: ${file} does not exist (give one with -f)`);
    if (errnoCode(e) === 'EISDIR') throw new UsageError(`${file} is a directory, not a Dockerfile`);
    throw e;
  }
}

function readIgnore(dockerfile: string, context: string): string[] {
  for (const cand of [dockerfile + '.dockerignore', path.join(context, '.dockerignore')]) {
    let text: string;
    try {
      text = fs.readFileSync(cand, 'utf8');
    } catch {
      continue;
    }
    try {
      return parseDockerignore(text);
    } catch (e) {
      if (e instanceof DockerignoreError) throw new UsageError(`${cand}: ${e.message}`);
      throw e;
    }
  }
  return [];
}

export interface BuildOutcome {
  imageId: string;
  manifestDigest: string;
}

export async function buildCommand(p: Parsed, signal: AbortSignal): Promise<BuildOutcome> {
  if (p.positional.length > 1) throw new UsageError(`build takes one context directory, got ${p.positional.length}: ${p.positional.join(' ')}`);
  const context = path.resolve(p.positional[0] ?? '.');
  let st: fs.Stats;
  try {
    st = fs.statSync(context);
  } catch {
    throw new UsageError(`build context ${context} does not exist`);
  }
  if (!st.isDirectory()) throw new UsageError(`build context ${context} is not a directory`);
  const dockerfile = path.resolve(flagStr(p, 'file') ?? path.join(context, 'Dockerfile'));
  const names = flagList(p, 'tag').map((t) => {
    const n = normalizeName(t);
    try {
      validateName(n);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    return n;
  });
  const outputs = parseOutputs(flagList(p, 'output'), flagBool(p, 'push'), names);
  const cacheTo = parseCacheSpecs(flagList(p, 'cache-to'), '--cache-to');
  const cacheFrom = parseCacheSpecs(flagList(p, 'cache-from'), '--cache-from');
  compressionFrom(p);
  const buildArgs = new Map<string, string>();
  for (const a of flagList(p, 'build-arg')) {
    const i = a.indexOf('=');
    if (i === 0) throw new UsageError(`--build-arg ${a}: the name is empty`);
    if (i < 0) {
      const v = process.env[a];
      if (v !== undefined) buildArgs.set(a, v);
    } else buildArgs.set(a.slice(0, i), a.slice(i + 1));
  }
  const network = flagStr(p, 'network') ?? 'host';
  if (network !== 'host' && network !== 'none') throw new UsageError(`--network ${network}: RUN steps support host or none`);
  const progressMode = (flagBool(p, 'quiet') ? 'quiet' : (flagStr(p, 'progress') ?? 'auto')) as ProgressMode;
  if (!['auto', 'tty', 'plain', 'quiet'].includes(progressMode)) throw new UsageError(`--progress ${progressMode}: use auto, tty or plain`);
  const jobsText = flagStr(p, 'jobs');
  const jobs = jobsText === undefined ? os.availableParallelism() : parseInt(jobsText, 10);
  if (!(jobs >= 1)) throw new UsageError(`--jobs ${jobsText}: give a number of at least 1`);

  const secrets = parseSecrets(flagList(p, 'secret'), flagList(p, 'ssh'));
  const text = readDockerfile(dockerfile);
  let df;
  try {
    df = parseDockerfile(text, path.relative(process.cwd(), dockerfile) || dockerfile);
  } catch (e) {
    if (e instanceof DockerfileSyntaxError) e.file = path.relative(process.cwd(), dockerfile) || dockerfile;
    throw e;
  }
  const ignore = readIgnore(dockerfile, context);
  const store = await openStore(storeRoot(flagStr(p, 'root')), flagStr(p, 'snapshotter'));
  const policy = pullPolicy(p.flags.get('pull') as string | boolean | undefined, store.root);
  const render = createRenderer(progressMode);
  const sde = process.env.SOURCE_DATE_EPOCH;
  if (sde !== undefined && !/^\d+$/.test(sde)) throw new UsageError(`SOURCE_DATE_EPOCH=${sde}: expected a number of seconds since 1970`);
  // Reproducible by default: without SOURCE_DATE_EPOCH every timestamp is the epoch (docs/cache.md).
  const sourceDateEpoch = sde !== undefined ? parseInt(sde, 10) : 0;
  const explain = flagStr(p, 'explain');
  if (explain !== undefined && explain !== 'text' && explain !== 'json') throw new UsageError(`--explain ${explain}: use text or json`);
  const graph = await planBuild({
    dockerfile: df,
    dockerfileName: path.relative(process.cwd(), dockerfile) || dockerfile,
    buildArgs,
    target: flagStr(p, 'target'),
    contextDir: context,
    ignore,
    names,
    network,
    allow: flagList(p, 'allow').map((a) => {
      if (a !== 'security.insecure' && a !== 'network.host') throw new UsageError(`--allow ${a}: known entitlements are security.insecure and network.host`);
      return a;
    }),
    resolveImage: async (name) => {
      const r = await resolveOrPull(store, name, p, { signal, log: (l) => render.info(l), policy, platform: flagStr(p, 'platform') });
      return { name: r.name ?? name, manifestDigest: r.manifestDigest, config: r.config };
    },
  });
  for (const w of graph.warnings) render.warn(w.line ? `line ${w.line}: ${w.message}` : w.message);
  const cacheIndex = new CacheIndex(store.root);
  const remote = cacheFrom.length ? await importCaches(store, cacheFrom, p, { signal, log: (l) => render.info(l) }) : undefined;
  const memo = new ChecksumMemo(cacheIndex.memoFile);
  const noCacheStages = new Set(flagList(p, 'no-cache-filter').map((x) => x.toLowerCase()));
  const cacheEvents: Extract<SolverEvent, { type: 'cache' }>[] = [];
  const solver = createSolver<OpSpec, OpResult>({
    opFor: createOps(
      {
        storeRoot: store.root,
        store: store.content,
        snapshotter: store.snapshotter,
        sourceDateEpoch,
        created: new Date(sourceDateEpoch * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
        secrets,
      },
      { index: cacheIndex, memo, remote },
    ),
    concurrency: jobs,
    noCache: (v) => flagBool(p, 'no-cache') || noCacheStages.has(String(v.meta['stage'] ?? '')),
    onEvent: (e) => {
      if (e.type === 'cache') cacheEvents.push(e);
      render.event(e);
    },
  });
  let result: OpResult;
  const stopAgents = await startAgents(secrets, path.join(store.root, 'tmp'));
  try {
    result = await solver.solve(graph.root, { signal });
  } finally {
    stopAgents();
    render.finish();
    memo.save();
  }
  if (explain) printExplain(explain, cacheEvents, memo.stats);
  await autoGc(store);
  if (result.kind !== 'export') throw new TsbuildError('INTERNAL', 'build produced no image');
  const imageId = result.configDigest;
  recordInputs(store.root, result.manifest.digest, {
    context,
    dockerfile,
    target: flagStr(p, 'target'),
    buildArgs: Object.fromEntries(buildArgs),
    network,
    sourceDateEpoch: sde,
    dockerfileDigest: 'sha256:' + crypto.createHash('sha256').update(text).digest('hex'),
  });
  for (const spec of cacheTo) await exportCache(store, spec, cacheEvents, graph.root, p, { signal, log: (l) => process.stderr.write(l + '\n') });
  await writeOutputs(store, outputs, result.manifest.digest, p, { signal, log: (l) => process.stderr.write(l + '\n'), mtime: sourceDateEpoch });
  const iid = flagStr(p, 'iidfile');
  if (iid) fs.writeFileSync(iid, imageId);
  if (flagBool(p, 'quiet')) {
    if (!outputs.some((o) => o.dest === '-')) process.stdout.write(imageId + '\n');
  }
  else {
    process.stderr.write(`writing image ${imageId}${names.length ? ` (${names.join(', ')})` : ''}\n`);
  }
  return { imageId, manifestDigest: result.manifest.digest };
}

function printExplain(format: string, events: Extract<SolverEvent, { type: 'cache' }>[], checksums: { hashed: number; memoHits: number }): void {
  const steps = events
    .filter((e) => e.vertex.meta['stepId'] !== undefined)
    .map((e) => ({ step: e.vertex.name, line: e.vertex.meta['line'], key: e.key, hit: e.hit, reason: e.reason ?? null, inputs: e.material }));
  if (format === 'json') {
    process.stdout.write(JSON.stringify({ steps, checksums: { filesRead: checksums.hashed, fromMemo: checksums.memoHits } }, null, 2) + '\n');
    return;
  }
  for (const s of steps) {
    process.stdout.write(`${s.step}\n  ${s.hit ? 'CACHED' : `MISS: ${s.reason}`}\n  key ${s.key}\n`);
    const entries = Object.entries(s.inputs);
    for (const [k, v] of entries.slice(0, 20)) process.stdout.write(`    ${k} = ${v.length > 100 ? v.slice(0, 97) + '...' : v}\n`);
    if (entries.length > 20) process.stdout.write(`    (${entries.length - 20} more inputs)\n`);
  }
  process.stdout.write(`context checksums: ${checksums.hashed} files read, ${checksums.memoHits} from the memo\n`);
}

/** What `tsbuild verify` needs to rebuild an image: `<store>/builds/<manifest>.json`. */
export interface BuildInputs {
  context: string;
  dockerfile: string;
  target?: string;
  buildArgs: Record<string, string>;
  network: string;
  sourceDateEpoch?: string;
  dockerfileDigest: string;
}

function recordInputs(root: string, manifest: string, inputs: BuildInputs): void {
  const dir = path.join(root, 'builds');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, manifest.replace('sha256:', '') + '.json'), JSON.stringify(inputs, null, 1));
}

export function readInputs(root: string, manifest: string): BuildInputs | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(root, 'builds', manifest.replace('sha256:', '') + '.json'), 'utf8')) as BuildInputs;
  } catch {
    return undefined;
  }
}

/** `--secret id=X,src=FILE`, `id=X,env=VAR`, `id=X` (env X, else file X); `--ssh default|ID=SOCKET`. */
export function parseSecrets(secretFlags: string[], sshFlags: string[]): BuildSecrets & { keyFiles: Map<string, string> } {
  const secrets = new Map<string, { file?: string; env?: string }>();
  for (const f of secretFlags) {
    const kv = new Map(f.split(',').map((x) => {
      const i = x.indexOf('=');
      return [i < 0 ? x : x.slice(0, i), i < 0 ? '' : x.slice(i + 1)] as [string, string];
    }));
    const id = kv.get('id');
    if (!id) throw new UsageError(`--secret ${f}: id= is required, e.g. --secret id=npmrc,src=$HOME/.npmrc`);
    for (const k of kv.keys()) if (!['id', 'src', 'source', 'env', 'type'].includes(k)) throw new UsageError(`--secret ${f}: unknown key ${k}`);
    const src = kv.get('src') ?? kv.get('source');
    const envName = kv.get('env');
    if (src !== undefined) {
      if (!fs.existsSync(src)) throw new UsageError(`--secret ${f}: ${src} does not exist`);
      secrets.set(id, { file: path.resolve(src) });
    } else if (envName !== undefined) secrets.set(id, { env: envName });
    else if (process.env[id] !== undefined) secrets.set(id, { env: id });
    else if (fs.existsSync(id)) secrets.set(id, { file: path.resolve(id) });
    else throw new UsageError(`--secret ${f}: give src=FILE or env=VAR`);
  }
  const ssh = new Map<string, string>();
  const keyFiles = new Map<string, string>();
  for (const f of sshFlags) {
    const i = f.indexOf('=');
    const id = i < 0 ? f : f.slice(0, i);
    let sock = i < 0 ? undefined : f.slice(i + 1);
    if (sock === undefined) {
      if (id !== 'default') throw new UsageError(`--ssh ${f}: use default or ID=SOCKET`);
      sock = process.env.SSH_AUTH_SOCK;
      if (!sock) throw new UsageError('--ssh default: SSH_AUTH_SOCK is not set; start ssh-agent or give --ssh default=SOCKET');
    }
    let st: fs.Stats;
    try {
      st = fs.statSync(sock);
    } catch {
      throw new UsageError(`--ssh ${f}: ${sock} does not exist`);
    }
    if (st.isSocket()) ssh.set(id, sock);
    else keyFiles.set(id, path.resolve(sock));
  }
  return { secrets, ssh, keyFiles };
}

/**
 * `--ssh ID=KEYFILE`: as BuildKit, an ssh-agent is started for the build with those keys loaded;
 * `stop` kills it. The key never leaves the agent.
 */
export async function startAgents(s: BuildSecrets & { keyFiles: Map<string, string> }, tmpRoot: string): Promise<() => void> {
  const stops: (() => void)[] = [];
  for (const [id, key] of s.keyFiles) {
    const dir = fs.mkdtempSync(path.join(tmpRoot, `agent-${process.pid}-`));
    const sock = path.join(dir, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
    const failed = await new Promise<string | undefined>((resolve) => {
      agent.once('error', (e) => resolve(`cannot start ssh-agent (${e.message}); install openssh-client or pass an agent socket`));
      const deadline = Date.now() + 5000;
      const poll = () => (fs.existsSync(sock) ? resolve(undefined) : Date.now() > deadline ? resolve('ssh-agent did not start') : setTimeout(poll, 20));
      poll();
    });
    const stop = () => {
      agent.kill('SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    };
    if (failed) {
      stop();
      throw new UsageError(`--ssh ${id}=${key}: ${failed}`);
    }
    const add = spawnSync('ssh-add', [key], { env: { ...process.env, SSH_AUTH_SOCK: sock }, encoding: 'utf8', input: '' });
    if (add.status !== 0) {
      stop();
      throw new UsageError(`--ssh ${id}=${key}: ssh-add could not load the key: ${(add.stderr || add.error?.message || '').trim()} (keys with a passphrase need an agent you unlock yourself)`);
    }
    s.ssh.set(id, sock);
    stops.push(stop);
  }
  return () => stops.forEach((f) => f());
}
