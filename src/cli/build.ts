/** `tsbuild build`: argv → a BuildRequest; progress and the result printed. */
import fs from 'node:fs';
import path from 'node:path';
import { build, contextFromStream, currentLimits, parseAddHosts, parseMemory, parseUlimits, parseCacheSpecs, parseLimits, parseOutputs, parseSecrets, type BuildResult, type ExplainStep } from '../app/index.js';
import { DockerfileSyntaxError, UsageError } from '../errors/index.js';
import { checkContentTrust, contentTrustFlag, chunkSizeOf, compressionFlags, compressionOf, flagBool, flagList, flagStr, helpFlag, insecureFlag, limitFlags, limitValues, registryOptions, rootFlag, storeFrom, type FlagSpec, type Parsed } from './args.js';
import { createRenderer, PROGRESS_MODES, type ProgressMode } from './progress.js';
import { ghData, ghProperty } from './progress-ci.js';

/** docker build's cgroup flags besides --memory, --cpus and --pids-limit; each limits every RUN step, as in `run`. */
const BUILD_CGROUP_FLAGS = ['memory-swap', 'cpu-shares', 'cpu-quota', 'cpu-period', 'cpuset-cpus', 'cpuset-mems'];

export const buildFlags: FlagSpec[] = [
  { name: 'tag', short: 't', type: 'list', arg: 'name[:tag]', help: 'name the image (repeatable)' },
  { name: 'file', short: 'f', type: 'string', arg: 'path', help: 'the Dockerfile (default: <context>/Dockerfile)' },
  { name: 'target', type: 'string', arg: 'stage', help: 'build up to this stage' },
  { name: 'build-arg', type: 'list', arg: 'KEY[=VALUE]', help: 'set a build argument (repeatable)' },
  { name: 'build-context', type: 'list', arg: 'NAME=DIR|docker-image://IMAGE', help: 'what FROM NAME and --from=NAME mean instead of that stage or image (repeatable)' },
  { name: 'quiet', short: 'q', type: 'bool', help: 'print only the image id' },
  { name: 'iidfile', type: 'string', arg: 'path', help: 'write the image id to this file' },
  { name: 'timeline', type: 'string', arg: 'FILE.svg|FILE.html', help: "draw the build's steps as a Gantt chart (lanes per stage, cache verdicts, critical path)" },
  { name: 'annotation', type: 'list', arg: '[manifest:]KEY=VALUE', help: "an annotation on the image manifest (repeatable)" },
  { name: 'max-layer-size', type: 'string', arg: 'SIZE', help: 'fail the build, naming the step, if a layer is bigger (e.g. 200m)' },
  { name: 'max-image-size', type: 'string', arg: 'SIZE', help: "fail the build if the image's layers add up to more (e.g. 1g)" },
  { name: 'check', type: 'bool', help: 'run the build checks (tsbuild check) instead of building; exit 1 if any fails' },
  { name: 'progress', type: 'string', arg: 'auto|tty|plain|json|github', help: 'progress output (default auto): json is one event per line, github uses GitHub Actions groups and annotations' },
  { name: 'network', type: 'string', arg: 'host|none|default', help: 'network for RUN steps (default host; default: a private network with NAT)' },
  { name: 'jobs', type: 'string', arg: 'N', help: 'steps run at once (default: CPUs)' },
  rootFlag,
  { name: 'snapshotter', type: 'string', arg: 'driver', help: 'storage driver: overlayfs (default), fuse-overlayfs, native, btrfs, zfs' },
  { name: 'secret', type: 'list', arg: 'id=ID[,src=FILE|env=VAR]', help: 'a build secret for RUN --mount=type=secret (repeatable)' },
  { name: 'ssh', type: 'list', arg: 'default|ID=SOCKET|ID=KEYFILE', help: 'an ssh agent (socket, or a key loaded into an agent started for the build) for RUN --mount=type=ssh' },
  { name: 'allow', type: 'list', arg: 'security.insecure', help: 'grant an entitlement (RUN --security=insecure)' },
  { name: 'no-cache', type: 'bool', help: 'run every step, ignoring the build cache' },
  { name: 'no-cache-filter', type: 'list', arg: 'stage', help: 'ignore the cache for this stage (repeatable)' },
  { name: 'explain', type: 'string', arg: 'text|json', help: 'print each step\'s cache key inputs and why it hit or missed' },
  { name: 'pull', type: 'bool', help: 'pull every FROM image even when the store has it (default: only missing ones; TSBUILD_PULL=never for none)' },
  { name: 'platform', type: 'string', arg: 'os/arch[/variant]', help: "the platform to build for (default: this machine's); another runs RUN steps under qemu-user emulation" },
  insecureFlag,
  { name: 'output', short: 'o', type: 'list', arg: 'type=image|registry|oci|docker|local[,dest=…][,push=true]', help: 'where the result goes (repeatable; default type=image)' },
  { name: 'cache-to', type: 'list', arg: 'type=registry,ref=R[,mode=min|max][,mounts=true] | type=local,dest=DIR | type=inline', help: 'export the build cache (repeatable; inline: on the image, read back with --cache-from type=registry,ref=IMAGE)' },
  { name: 'cache-from', type: 'list', arg: 'type=registry,ref=R[,mounts=true]', help: 'use build cache from a registry (repeatable)' },
  { name: 'push', type: 'bool', help: 'push the -t names after building (same as --output type=image,push=true)' },
  { name: 'label', type: 'list', arg: 'KEY=VALUE', help: 'a label on the image (repeatable)' },
  { name: 'metadata-file', type: 'string', arg: 'FILE', help: 'write the result (digests, names) as JSON, with buildx\'s keys' },
  ...compressionFlags,
  { name: 'add-host', type: 'list', arg: 'NAME:IP', help: 'an /etc/hosts entry for RUN steps (repeatable)' },
  { name: 'ulimit', type: 'list', arg: 'NAME=SOFT[:HARD]', help: 'a resource limit for RUN steps (e.g. nofile=1024:2048)' },
  { name: 'shm-size', type: 'string', arg: 'bytes', help: 'size of /dev/shm in RUN steps (default 64m)' },
  { name: 'memory', short: 'm', type: 'string', arg: 'bytes', help: 'memory limit of every RUN step (also "build" in config.json)' },
  { name: 'cpus', type: 'string', arg: 'number', help: 'CPUs every RUN step may use' },
  { name: 'pids-limit', type: 'string', arg: 'int', help: 'processes every RUN step may have' },
  // The legacy builder's other cgroup flags, as `run` has them, for every RUN step.
  ...limitFlags.filter((f) => BUILD_CGROUP_FLAGS.includes(f.name)).map((f): FlagSpec => ({ ...f, help: `${f.help}, for every RUN step` })),
  // Docker's flags that hold here as they are, with nothing for tsbuild to do (CI scripts pass them).
  { name: 'load', type: 'bool', help: "accepted (buildx's --load): the image always lands in the store" },
  { name: 'rm', type: 'bool', help: 'accepted: tsbuild never keeps intermediate containers' },
  { name: 'force-rm', type: 'bool', help: 'accepted: tsbuild never keeps intermediate containers' },
  { name: 'compress', type: 'bool', help: 'accepted: the context is read where it is, never sent to a daemon' },
  contentTrustFlag,
  { name: 'provenance', type: 'string', arg: 'false', help: 'only false: tsbuild attaches no provenance attestation' },
  { name: 'sbom', type: 'string', arg: 'false', help: 'only false: tsbuild attaches no SBOM attestation' },
  { name: 'isolation', type: 'string', arg: 'default', help: 'only default (Linux namespaces)' },
  { name: 'builder', type: 'string', arg: 'NAME', help: 'accepted with a warning: tsbuild has no builder instances and builds on this machine' },
  // Docker's flags tsbuild does not have yet: an error that says what to do instead.
  { name: 'attest', type: 'list', help: '', unsupported: 'attestations (SBOM, provenance) are not supported yet; leave it out: tsbuild attaches none' },
  { name: 'call', type: 'string', help: '', unsupported: 'not supported yet; --check runs the build checks (--call=check)' },
  { name: 'cgroup-parent', type: 'string', help: '', unsupported: 'not supported yet; --memory, --cpus and --pids-limit limit every RUN step in a cgroup of the build\'s own' },
  { name: 'security-opt', type: 'list', help: '', unsupported: 'not supported for builds; a RUN step has the default seccomp profile, and RUN --security=insecure with --allow security.insecure makes it privileged' },
  { name: 'squash', type: 'bool', help: '', unsupported: 'not supported; a multi-stage build with COPY --from=build / / into FROM scratch gives one layer' },
  { name: 'stream', type: 'bool', help: '', unsupported: "not applicable: the context is read where it is (it was the legacy builder's experimental context streaming)" },
  helpFlag,
];

/** Refuses the accepted Docker flags' values that would mean something tsbuild does not do. */
function checkCompatFlags(p: Parsed, warn: (m: string) => void): void {
  for (const name of ['provenance', 'sbom']) {
    const v = flagStr(p, name);
    if (v !== undefined && !/^(false|0)$/i.test(v)) throw new UsageError(`--${name}=${v}: tsbuild does not attach ${name === 'sbom' ? 'SBOM' : 'provenance'} attestations yet; only --${name}=false is accepted (what it does anyway)`);
  }
  const iso = flagStr(p, 'isolation');
  if (iso !== undefined && iso !== 'default') throw new UsageError(`--isolation ${iso}: Linux builds have only the default isolation (namespaces); ${iso} is a Windows isolation`);
  checkContentTrust(p);
  const builder = flagStr(p, 'builder');
  if (builder !== undefined) warn(`WARNING: --builder ${builder}: tsbuild has no builder instances; building on this machine`);
}

/** `--build-arg K=V`, or a bare `K` taken from this process's environment (skipped when unset). */
function buildArgs(values: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of values) {
    const i = a.indexOf('=');
    if (i === 0) throw new UsageError(`--build-arg ${a}: the name is empty`);
    if (i > 0) out[a.slice(0, i)] = a.slice(i + 1);
    else if (process.env[a] !== undefined) out[a] = process.env[a]!;
  }
  return out;
}

function sourceDateEpoch(): number | undefined {
  const sde = process.env.SOURCE_DATE_EPOCH;
  if (sde === undefined) return undefined;
  if (!/^\d+$/.test(sde)) throw new UsageError(`SOURCE_DATE_EPOCH=${sde}: expected a number of seconds since 1970`);
  return parseInt(sde, 10);
}

function printExplain(format: string, steps: ExplainStep[], checksums: BuildResult['checksums']): void {
  if (format === 'json') {
    process.stdout.write(JSON.stringify({ steps, checksums }, null, 2) + '\n');
    return;
  }
  for (const s of steps) {
    process.stdout.write(`${s.step}\n  ${s.hit ? 'CACHED' : `MISS: ${s.reason}`}\n  key ${s.key}\n`);
    const entries = Object.entries(s.inputs);
    for (const [k, v] of entries.slice(0, 20)) process.stdout.write(`    ${k} = ${v.length > 100 ? v.slice(0, 97) + '...' : v}\n`);
    if (entries.length > 20) process.stdout.write(`    (${entries.length - 20} more inputs)\n`);
  }
  process.stdout.write(`context checksums: ${checksums.filesRead} files read, ${checksums.fromMemo} from the memo\n`);
}

/**
 * `--annotation [manifest:|index:]KEY=VALUE`, BuildKit's targets: the manifest (the default), or the
 * image index of a multi-platform build. The descriptor targets are not written by tsbuild.
 */
function parseAnnotations(values: string[]): { manifest: Record<string, string>; index: Record<string, string> } {
  const out = { manifest: {} as Record<string, string>, index: {} as Record<string, string> };
  for (const v of values) {
    const m = /^(?:([a-z-]+)(?:\[[^\]]*\])?:)?([^=:]+)=(.*)$/s.exec(v);
    if (!m) throw new UsageError(`--annotation ${v}: use KEY=VALUE, manifest:KEY=VALUE or index:KEY=VALUE`);
    if (m[1] !== undefined && m[1] !== 'manifest' && m[1] !== 'index') throw new UsageError(`--annotation ${v}: tsbuild annotates the manifest or the index of a multi-platform image; use manifest:KEY=VALUE, index:KEY=VALUE or KEY=VALUE`);
    out[m[1] === 'index' ? 'index' : 'manifest'][m[2]!] = m[3]!;
  }
  return out;
}

export async function buildCommand(p: Parsed, signal: AbortSignal): Promise<BuildResult> {
  if (p.positional.length > 1) throw new UsageError(`build takes one context directory, got ${p.positional.length}: ${p.positional.join(' ')}`);
  checkCompatFlags(p, (m) => process.stderr.write(`${m}\n`));
  const tags = flagList(p, 'tag');
  const annotations = parseAnnotations(flagList(p, 'annotation'));
  const quiet = flagBool(p, 'quiet');
  const progressMode = (quiet ? 'quiet' : (flagStr(p, 'progress') ?? 'auto')) as ProgressMode;
  if (!PROGRESS_MODES.includes(progressMode)) throw new UsageError(`--progress ${progressMode}: use auto, tty, plain, json or github`);
  const jobsText = flagStr(p, 'jobs');
  const jobs = jobsText === undefined ? undefined : parseInt(jobsText, 10);
  if (jobs !== undefined && !(jobs >= 1)) throw new UsageError(`--jobs ${jobsText}: give a number of at least 1`);
  const explain = flagStr(p, 'explain');
  if (explain !== undefined && explain !== 'text' && explain !== 'json') throw new UsageError(`--explain ${explain}: use text or json`);
  const outputs = parseOutputs(flagList(p, 'output'), flagBool(p, 'push'), tags);
  const labels: Record<string, string> = {};
  for (const l of flagList(p, 'label')) {
    const i = l.indexOf('=');
    if (i <= 0) throw new UsageError(`--label ${l}: use KEY=VALUE`);
    labels[l.slice(0, i)] = l.slice(i + 1);
  }
  // `build -` reads a Dockerfile or a context archive from stdin; `-f -` reads the Dockerfile from it.
  const fromStdin = p.positional[0] === '-' ? await contextFromStream(process.stdin) : undefined;
  const dockerfileText = flagStr(p, 'file') === '-' ? fs.readFileSync(0, 'utf8') : fromStdin?.dockerfileText;
  if (fromStdin && flagStr(p, 'file') === '-') throw new UsageError('build - and -f - both read standard input: give one of them');
  const request = {
    context: fromStdin?.dir ?? p.positional[0] ?? '.',
    transientContext: fromStdin !== undefined,
    dockerfile: flagStr(p, 'file') === '-' ? undefined : flagStr(p, 'file'),
    dockerfileText,
    labels,
    extraHosts: parseAddHosts(flagList(p, 'add-host')),
    ulimits: parseUlimits(flagList(p, 'ulimit'), currentLimits),
    shmSize: flagStr(p, 'shm-size') !== undefined ? parseMemory(flagStr(p, 'shm-size')!, '--shm-size') : undefined,
    tags,
    target: flagStr(p, 'target'),
    buildArgs: buildArgs(flagList(p, 'build-arg')),
    buildContexts: flagList(p, 'build-context'),
    // Checked by the app layer, which owns the message.
    network: flagStr(p, 'network') as 'host' | 'none' | 'default' | undefined,
    jobs,
    noCache: flagBool(p, 'no-cache'),
    noCacheFilter: flagList(p, 'no-cache-filter'),
    secrets: parseSecrets(flagList(p, 'secret'), flagList(p, 'ssh')),
    allow: flagList(p, 'allow'),
    pull: p.flags.get('pull') === true ? 'always' : undefined,
    platform: flagStr(p, 'platform'),
    outputs,
    cacheTo: parseCacheSpecs(flagList(p, 'cache-to'), '--cache-to'),
    cacheFrom: parseCacheSpecs(flagList(p, 'cache-from'), '--cache-from'),
    compression: compressionOf(p),
    chunkSize: chunkSizeOf(p),
    sourceDateEpoch: sourceDateEpoch(),
    stdout: process.stdout,
    timeline: flagStr(p, 'timeline'),
    annotations: annotations.manifest,
    indexAnnotations: annotations.index,
    budgets: {
      ...(flagStr(p, 'max-layer-size') !== undefined ? { maxLayer: parseMemory(flagStr(p, 'max-layer-size')!, '--max-layer-size') } : {}),
      ...(flagStr(p, 'max-image-size') !== undefined ? { maxImage: parseMemory(flagStr(p, 'max-image-size')!, '--max-image-size') } : {}),
    },
    limits: ['memory', 'cpus', 'pids-limit', ...BUILD_CGROUP_FLAGS].some((f) => p.flags.has(f)) ? parseLimits(limitValues(p)) : undefined,
    ...registryOptions(p),
  };
  const store = await storeFrom(p).catch((e: unknown) => {
    fromStdin?.cleanup();
    throw e;
  });
  const dockerfileName = request.dockerfile ?? path.join(request.context, 'Dockerfile');
  const render = createRenderer(progressMode, process.stderr, dockerfileName);
  // Before the steps finish, lines belong to the progress view; after, they go straight to stderr.
  let solved = false;
  const warnings: string[] = [];
  const result = await build(store, request, {
    signal,
    onEvent: (e) => {
      if (e.type === 'solver') render.event(e.event);
      else if (e.type === 'warning') {
        render.warn(e.message, e.line);
        warnings.push(`${e.line ? `line ${e.line}: ` : ''}${e.message}`);
      } else if (e.type === 'log') {
        // -q: the image id and nothing else (errors still go to stderr), unless --progress asks for more.
        if (solved && !(quiet && flagStr(p, 'progress') === undefined)) process.stderr.write(e.line + '\n');
        else render.info(e.line);
      } else if (e.type === 'solved') {
        solved = true;
        render.finish();
      }
    },
  }).catch((e: unknown) => {
    // A Dockerfile error found before any step ran is annotated on its line too.
    if (progressMode === 'github' && e instanceof DockerfileSyntaxError) {
      process.stderr.write(`::error file=${ghProperty(dockerfileName)}${e.startLine > 0 ? `,line=${e.startLine}` : ''}::${ghData(e.message)}\n`);
    }
    throw e;
  }).finally(() => {
    if (!solved) render.finish();
    fromStdin?.cleanup();
    // Repeated at the end, where a long build's log is read first (as BuildKit's summary).
    if (warnings.length && (progressMode === 'plain' || progressMode === 'tty' || progressMode === 'auto')) {
      process.stderr.write(`${warnings.length} warning${warnings.length === 1 ? '' : 's'} found:\n${warnings.map((w) => ` - ${w}\n`).join('')}`);
    }
  });
  const meta = flagStr(p, 'metadata-file');
  if (meta) {
    fs.writeFileSync(meta, JSON.stringify({ 'containerimage.config.digest': result.imageId, 'containerimage.digest': result.manifestDigest, ...(result.names.length ? { 'image.name': result.names.join(',') } : {}) }, null, 2) + '\n');
  }
  if (explain) printExplain(explain, result.steps, result.checksums);
  const iid = flagStr(p, 'iidfile');
  if (iid) fs.writeFileSync(iid, result.imageId);
  if (quiet) {
    if (!outputs.some((o) => o.dest === '-')) process.stdout.write(result.imageId + '\n');
  } else {
    process.stderr.write(`writing image ${result.imageId}${result.names.length ? ` (${result.names.join(', ')})` : ''}\n`);
  }
  return result;
}
