/**
 * The command line: argv → module doors. The only code that prints; maps error codes to exit codes.
 * Exit codes: 0 success; 1 a build or command failed; 2 bad usage; for `run`, the container's exit code,
 * or 125 when tsbuild itself failed or its command line is bad, 126/127 when the command could not
 * be executed/found (as Docker).
 */
import { DockerfileSyntaxError, TsbuildError, UsageError, CancelledError } from '../errors/index.js';
import { VertexError, dnsMain, needsUserNamespace, openStore, runInUserNamespace, setSelfCommand } from '../app/index.js';
import { VERSION, parseArgs, usage, type FlagSpec } from './args.js';
import { selfCommand } from './startup.js';
import { buildCommand, buildFlags } from './build.js';
import { runCommand, runFlags } from './run.js';
import { imagesCommand, inspectCommand, rmiCommand, statsCommand, historyCommand, saveCommand, loadCommand, imagePruneCommand, dfCommand, systemPruneCommand, commonFlags, rmiFlags, imagesFlags, statsFlags, historyFlags, saveFlags, loadFlags, pruneImagesFlags, inspectFlags, dfFlags } from './images.js';
import { cacheCommand, cacheFlags } from './cache.js';
import {
  attachCommand, attachFlags, cpCommand, cpFlags, execCommand, execFlags, execMain, killCommand, killFlags, logsCommand, logsFlags, monitorMain, pauseCommand, psCommand,
  portCommand, psFlags, renameCommand, restartCommand, rmCommand, rmFlags, startCommand, startFlags, stopCommand, stopFlags, topCommand, waitCommand, containerPruneCommand, containerPruneFlags,
} from './containers.js';
import { extractGlobals, resolveCommand } from './commands.js';
import { buildsCommand, buildsFlags } from './builds.js';
import { checkCommand, checkFlags } from './check.js';
import {
  networkConnectCommand, networkConnectFlags, networkCreateCommand, networkCreateFlags, networkDisconnectCommand, networkInspectCommand, networkInspectFlags, networkLsCommand,
  networkLsFlags, networkPruneCommand, networkPruneFlags, networkRmCommand, networkRmFlags,
} from './networks.js';
import { volumeCreateCommand, volumeCreateFlags, volumeInspectCommand, volumeInspectFlags, volumeLsCommand, volumeLsFlags, volumePruneCommand, volumePruneFlags, volumeRmCommand, volumeRmFlags } from './volumes.js';
import { infoCommand, infoFlags, versionCommand, versionFlags, migrateCommand, migrateFlags, parseCommand, parseFlags, verifyCommand, verifyFlags } from './info.js';
import { doctorCommand, doctorFlags } from './doctor.js';
import { pullCommand, pullFlags, pushCommand, pushFlags, tagCommand, tagFlags, loginCommand, loginFlags, logoutCommand, logoutFlags } from './registry.js';

const HELP = `tsbuild: build OCI images from Dockerfiles and run them, without a daemon.

Usage:
  tsbuild [build] [OPTIONS] CONTEXT       build an image (build is the default command)
  tsbuild run [OPTIONS] IMAGE [CMD...]    run a container
  tsbuild pull IMAGE                      pull an image from a registry
  tsbuild push IMAGE [DEST]               push an image to a registry
  tsbuild tag SOURCE TARGET               give an image another name
  tsbuild login / logout HOST             store or remove registry credentials
  tsbuild images                          list images
  tsbuild inspect NAME                    an image's config and manifest, or a container's state
  tsbuild history IMAGE                   the image's layers and the steps that made them
  tsbuild save -o FILE IMAGE              write an image as a Docker (or --format oci) archive
  tsbuild load -i FILE                    read images from a Docker or OCI archive
  tsbuild rmi IMAGE                       remove an image name; unreferenced data is deleted
  tsbuild run -d [OPTIONS] IMAGE [CMD...] run a container in the background (prints its id)
  tsbuild ps [-a] [-q] [--filter] [--format]  list containers
  tsbuild logs [-f] [--tail N] CONTAINER  a container's output (stdout and stderr apart)
  tsbuild exec [-it] CONTAINER CMD...     run a command in a running container
  tsbuild stop / restart [-t SECS] CONTAINER  stop (stop signal, then SIGKILL), or stop and start
  tsbuild start [-a] CONTAINER            start a stopped container in the background
  tsbuild kill [-s SIGNAL] CONTAINER      send a signal to a container
  tsbuild wait CONTAINER                  wait for a container to stop; print its exit code
  tsbuild attach CONTAINER                a running container's output (and input)
  tsbuild pause / unpause CONTAINER       freeze or thaw every process of a container
  tsbuild top CONTAINER                   a container's processes
  tsbuild port CONTAINER [PORT[/PROTO]]   a container's published ports
  tsbuild cp CONTAINER:SRC DEST | SRC CONTAINER:DEST   copy files in or out
  tsbuild rename CONTAINER NAME           rename a container
  tsbuild rm [-f] CONTAINER               remove a container (-f: kill it first)
  tsbuild stats [--no-stream] [NAME...]   CPU, memory, PIDs and block I/O of running containers
  tsbuild volume create|ls|inspect|rm|prune   named and anonymous volumes (run -v NAME:/path)
  tsbuild network create|ls|inspect|rm|prune|connect|disconnect   user networks (run --network NAME)
  tsbuild parse [-f Dockerfile]           show how tsbuild reads a Dockerfile
  tsbuild check [-f Dockerfile] [CTX]     BuildKit's build checks and good practice (text, json, sarif)
  tsbuild verify IMAGE                    rebuild from recorded inputs; does the digest match?
  tsbuild doctor [--repair] [--quick]     check the store (records, blobs, images, snapshots); repair it
  tsbuild info                            store, snapshotter and what this machine supports
  tsbuild version [-f TEMPLATE]           tsbuild's version ({{.Client.Version}}, {{.Server.Version}} as Docker's)
  tsbuild system migrate                  rootless: end the user namespace (after /etc/subuid changed)
  tsbuild builds [ls|show|diff A B]       past builds: steps, times, cache verdicts; what changed
  tsbuild cache ls                        list build cache records
  tsbuild prune / tsbuild cache prune     remove build cache (--keep-storage, --filter until=, --all)
  tsbuild image prune [-a] / container prune   remove unused images / stopped containers
  tsbuild system df [-v] / system prune [-a]   disk usage / remove what nothing uses
  (every prune asks first on a terminal, as Docker's; -f does not ask)

Docker's forms work too: image ls|inspect|rm|tag|push|pull, container ls|rm|run|stats|logs|exec|…,
builder prune, system info. Global options, before or after the command: --root DIR,
--snapshotter NAME, --debug (-D), --log-level debug|info.

Run "tsbuild COMMAND --help" for a command's options.
`;

const COMMANDS: Record<string, { flags: FlagSpec[]; synopsis: string; stop?: boolean }> = {
  build: { flags: buildFlags, synopsis: '[OPTIONS] CONTEXT' },
  run: { flags: runFlags, synopsis: '[OPTIONS] IMAGE [COMMAND] [ARG...]', stop: true },
  images: { flags: imagesFlags, synopsis: '[OPTIONS]' },
  inspect: { flags: inspectFlags, synopsis: '[-f TEMPLATE] IMAGE [IMAGE...]' },
  rmi: { flags: rmiFlags, synopsis: 'IMAGE [IMAGE...]' },
  ps: { flags: psFlags, synopsis: '[OPTIONS]' },
  rm: { flags: rmFlags, synopsis: '[-f] CONTAINER [CONTAINER...]' },
  stop: { flags: stopFlags, synopsis: '[-t SECONDS] [-s SIGNAL] CONTAINER [CONTAINER...]' },
  restart: { flags: stopFlags, synopsis: '[-t SECONDS] CONTAINER [CONTAINER...]' },
  start: { flags: startFlags, synopsis: '[-a] CONTAINER [CONTAINER...]' },
  kill: { flags: killFlags, synopsis: '[-s SIGNAL] CONTAINER [CONTAINER...]' },
  wait: { flags: commonFlags, synopsis: 'CONTAINER [CONTAINER...]' },
  pause: { flags: commonFlags, synopsis: 'CONTAINER [CONTAINER...]' },
  unpause: { flags: commonFlags, synopsis: 'CONTAINER [CONTAINER...]' },
  rename: { flags: commonFlags, synopsis: 'CONTAINER NEW_NAME' },
  top: { flags: commonFlags, synopsis: 'CONTAINER' },
  port: { flags: commonFlags, synopsis: 'CONTAINER [PRIVATE_PORT[/PROTO]]' },
  logs: { flags: logsFlags, synopsis: '[-f] [--tail N] [--since TIME] [-t] CONTAINER' },
  exec: { flags: execFlags, synopsis: '[OPTIONS] CONTAINER COMMAND [ARG...]', stop: true },
  cp: { flags: cpFlags, synopsis: 'CONTAINER:SRC DEST | SRC CONTAINER:DEST' },
  attach: { flags: attachFlags, synopsis: '[--no-stdin] [--detach-keys KEYS] CONTAINER' },
  stats: { flags: statsFlags, synopsis: '[--no-stream] [CONTAINER...]' },
  history: { flags: historyFlags, synopsis: '[--no-trunc] IMAGE' },
  save: { flags: saveFlags, synopsis: '[-o FILE] [--format docker|oci] IMAGE' },
  load: { flags: loadFlags, synopsis: '[-i FILE]' },
  'image-prune': { flags: pruneImagesFlags, synopsis: '[-a] [-f] [--filter until=DURATION]' },
  'container-prune': { flags: containerPruneFlags, synopsis: '[-f] [--filter until=DURATION]' },
  'volume-create': { flags: volumeCreateFlags, synopsis: '[-o KEY=VALUE] [--label KEY=VALUE] [NAME]' },
  'volume-ls': { flags: volumeLsFlags, synopsis: '[-q] [--filter KEY=VALUE] [--format TEMPLATE]' },
  'volume-inspect': { flags: volumeInspectFlags, synopsis: '[-f TEMPLATE] VOLUME [VOLUME...]' },
  'volume-rm': { flags: volumeRmFlags, synopsis: '[-f] VOLUME [VOLUME...]' },
  'volume-prune': { flags: volumePruneFlags, synopsis: '[-a] [-f] [--filter label=…]' },
  'network-create': { flags: networkCreateFlags, synopsis: '[--subnet CIDR] [--gateway IP] [--internal] NAME' },
  'network-ls': { flags: networkLsFlags, synopsis: '[-q] [--filter KEY=VALUE] [--format TEMPLATE]' },
  'network-inspect': { flags: networkInspectFlags, synopsis: '[-f TEMPLATE] NETWORK [NETWORK...]' },
  'network-rm': { flags: networkRmFlags, synopsis: 'NETWORK [NETWORK...]' },
  'network-prune': { flags: networkPruneFlags, synopsis: '[-f]' },
  'network-connect': { flags: networkConnectFlags, synopsis: '[--alias NAME] NETWORK CONTAINER' },
  'network-disconnect': { flags: commonFlags, synopsis: 'NETWORK CONTAINER' },
  check: { flags: checkFlags, synopsis: '[-f Dockerfile] [--format text|json|sarif] [CONTEXT]' },
  builds: { flags: buildsFlags, synopsis: '[ls | show BUILD | diff A B | logs BUILD [LINE] | rm BUILD... | prune [--keep N]]' },
  'system-df': { flags: dfFlags, synopsis: '[-v]' },
  'system-migrate': { flags: migrateFlags, synopsis: '' },
  'system-prune': { flags: [...pruneImagesFlags, { name: 'volumes', type: 'bool', help: 'anonymous volumes no container uses, too' }], synopsis: '[-a] [-f] [--volumes] [--filter until=DURATION]' },
  parse: { flags: parseFlags, synopsis: '[-f Dockerfile] [--format buildkit|json]' },
  cache: { flags: cacheFlags, synopsis: 'ls [--mounts] | prune [--keep-storage SIZE] [--filter until=DURATION] [--all] | export-mounts --output DIR | import-mounts --input DIR' },
  verify: { flags: verifyFlags, synopsis: 'IMAGE' },
  doctor: { flags: doctorFlags, synopsis: '[--repair] [--quick] [--format json]' },
  info: { flags: infoFlags, synopsis: '[--format json|text|TEMPLATE]' },
  version: { flags: versionFlags, synopsis: '[--format TEMPLATE]' },
  pull: { flags: pullFlags, synopsis: '[OPTIONS] NAME[:TAG|@DIGEST]' },
  push: { flags: pushFlags, synopsis: '[OPTIONS] NAME[:TAG] [DESTINATION]' },
  tag: { flags: tagFlags, synopsis: 'SOURCE TARGET[:TAG]' },
  login: { flags: loginFlags, synopsis: '[-u USER] [--password-stdin] HOST' },
  logout: { flags: logoutFlags, synopsis: 'HOST' },
  prune: { flags: cacheFlags, synopsis: '[--keep-storage SIZE] [--filter until=DURATION] [--all]' },
};

const errno = (x: unknown) => (x as NodeJS.ErrnoException | undefined)?.code;
const causes = (x: unknown): unknown[] => (x instanceof Error ? [x, ...causes(x.cause)] : []);

/** A full disk anywhere under the error: what to do about it. */
function noSpaceHint(e: unknown): string {
  const full = causes(e).some((x) => errno(x) === 'ENOSPC' || (x instanceof TsbuildError && x.code === 'NO_SPACE'));
  return full ? '\n  the filesystem is full: free space (tsbuild system prune -a, tsbuild prune --all, or elsewhere on that disk) and run the command again; what was half written has been removed' : '';
}

function errorText(e: unknown): string {
  if (e instanceof DockerfileSyntaxError) return e.located();
  if (e instanceof VertexError) {
    const line = e.vertex.meta['line'];
    const stage = e.vertex.meta['stage'];
    return `${e.message}${line ? `\n  at Dockerfile line ${line}${stage ? ` (stage ${stage})` : ''}` : ''}${noSpaceHint(e)}`;
  }
  if (noSpaceHint(e)) return `${(e as Error).message}${noSpaceHint(e)}`;
  // A read-only store (or output path): the raw errno names the file; say what to do.
  if (errno(e) === 'EROFS' || errno((e as Error | undefined)?.cause) === 'EROFS') return `${(e as Error).message}\n  the path is on a read-only filesystem: reading commands (images, inspect, ps, cache ls, …) work on a read-only store, this one writes; give a writable store with --root`;
  if (e instanceof Error) return e.message;
  return String(e);
}

/**
 * The reader of the output is gone (`tsbuild images | head -1`). A Go CLI dies of SIGPIPE there;
 * Node throws EPIPE with a stack trace. Stop quietly instead: by default at once (141, as a process
 * killed by SIGPIPE); a build, pull or push is cancelled as Ctrl-C cancels it (it cleans up); `run`
 * ends its container itself (cli/run.ts).
 */
let onBrokenPipe = (): void => process.exit(141);

export async function main(argv: string[]): Promise<number> {
  setSelfCommand(selfCommand());
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    onBrokenPipe();
  });
  if (argv[0] === '__dns') {
    try {
      return await dnsMain(await openStore(argv[1]!, undefined, { recover: false }));
    } catch (e) {
      process.stderr.write(`ERROR: ${errorText(e)}\n`);
      return 1;
    }
  }
  if (argv[0] === '__monitor' || argv[0] === '__exec') {
    try {
      return argv[0] === '__exec' ? await execMain(argv.slice(1)) : await monitorMain(argv.slice(1));
    } catch (e) {
      process.stderr.write(`ERROR: ${errorText(e)}\n`);
      return 1;
    }
  }
  let cmd: string;
  let rest: string[];
  try {
    ({ cmd, rest } = resolveCommand(argv, [...Object.keys(COMMANDS), 'help']));
  } catch (e) {
    process.stderr.write(`ERROR: ${errorText(e)}\n`);
    return 2;
  }
  if (cmd === '' || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    process.stdout.write(HELP);
    return cmd === '' && argv.length === 0 ? 2 : 0;
  }
  if (argv[0] === '--version' || argv[0] === '-v') {
    process.stdout.write(`tsbuild ${VERSION}\n`);
    return 0;
  }
  const spec = COMMANDS[cmd]!;
  const ac = new AbortController();
  if (cmd === 'run') onBrokenPipe = () => undefined;
  let pipeBroken = false;
  let signals = 0;
  let lastSignal = 0;
  const onSig = (sig: NodeJS.Signals) => {
    // Rootless, Ctrl-C reaches this process from the terminal and again from the outer one, which
    // forwards what is sent to it alone: one press, one cancel. A second press comes later.
    if (Date.now() - lastSignal < 300) return;
    lastSignal = Date.now();
    signals++;
    if (signals > 1) process.exit(130);
    ac.abort();
    process.stderr.write(`\n${sig === 'SIGINT' ? 'interrupted' : 'terminated'}: cancelling, cleaning up (again to force)\n`);
  };
  try {
    const p = parseArgs(extractGlobals(rest, spec.flags, spec.stop), spec.flags, spec.stop);
    if (p.flags.get('help') === true) {
      process.stdout.write(usage(cmd.replace(/^(image|system|volume|network)-/, '$1 '), spec.synopsis, spec.flags));
      return 0;
    }
    // Not root: the same command again inside the user's namespace (docs/rootless.md).
    if (needsUserNamespace()) return await runInUserNamespace([...selfCommand(), ...argv], (m) => process.stderr.write(`WARNING: ${m}\n`));
    const cancellable = async (fn: () => Promise<unknown>): Promise<number> => {
      onBrokenPipe = () => {
        pipeBroken = true;
        ac.abort();
      };
      process.on('SIGINT', onSig);
      process.on('SIGTERM', onSig);
      try {
        await fn();
      } finally {
        process.off('SIGINT', onSig);
        process.off('SIGTERM', onSig);
      }
      return 0;
    };
    switch (cmd) {
      case 'build':
        // --check: the checks alone, as `docker build --check` (BuildKit's --call=check).
        if (p.flags.get('check') === true) return checkCommand(p);
        return await cancellable(() => buildCommand(p, ac.signal));
      case 'pull':
        return await cancellable(() => pullCommand(p, ac.signal));
      case 'push':
        return await cancellable(() => pushCommand(p, ac.signal));
      case 'tag':
        return await tagCommand(p);
      case 'login':
        return await loginCommand(p);
      case 'logout':
        return await logoutCommand(p);
      case 'run':
        return await runCommand(p);
      case 'images':
        return await imagesCommand(p);
      case 'inspect':
        return await inspectCommand(p);
      case 'rmi':
        return await rmiCommand(p);
      case 'ps':
        return await psCommand(p);
      case 'rm':
        return await rmCommand(p);
      case 'stop':
        return await stopCommand(p);
      case 'restart':
        return await restartCommand(p);
      case 'start':
        return await startCommand(p);
      case 'kill':
        return await killCommand(p);
      case 'wait':
        return await waitCommand(p);
      case 'pause':
      case 'unpause':
        return await pauseCommand(p, cmd === 'pause');
      case 'rename':
        return await renameCommand(p);
      case 'port':
        return await portCommand(p);
      case 'top':
        return await topCommand(p);
      case 'logs':
        return await logsCommand(p);
      case 'exec':
        return await execCommand(p);
      case 'cp':
        return await cpCommand(p);
      case 'attach':
        return await attachCommand(p);
      case 'stats':
        return await statsCommand(p);
      case 'history':
        return await historyCommand(p);
      case 'load':
        return await cancellable(() => loadCommand(p, ac.signal));
      case 'image-prune':
        return await imagePruneCommand(p);
      case 'check':
        return checkCommand(p);
      case 'builds':
        return await buildsCommand(p);
      case 'network-create':
        return await networkCreateCommand(p);
      case 'network-ls':
        return await networkLsCommand(p);
      case 'network-inspect':
        return await networkInspectCommand(p);
      case 'network-rm':
        return await networkRmCommand(p);
      case 'network-prune':
        return await networkPruneCommand(p);
      case 'network-connect':
        return await networkConnectCommand(p);
      case 'network-disconnect':
        return await networkDisconnectCommand(p);
      case 'volume-create':
        return await volumeCreateCommand(p);
      case 'volume-ls':
        return await volumeLsCommand(p);
      case 'volume-inspect':
        return await volumeInspectCommand(p);
      case 'volume-rm':
        return await volumeRmCommand(p);
      case 'volume-prune':
        return await volumePruneCommand(p);
      case 'system-df':
        return await dfCommand(p);
      case 'container-prune':
        return await containerPruneCommand(p);
      case 'system-prune':
        return await systemPruneCommand(p);
      case 'system-migrate':
        return await migrateCommand(p);
      case 'save':
        return await cancellable(() => saveCommand(p, ac.signal));
      case 'parse':
        return parseCommand(p);
      case 'cache':
        return await cacheCommand(p.positional[0], { ...p, positional: p.positional.slice(1) });
      case 'prune':
        return await cacheCommand('prune', p);
      case 'verify':
        return await verifyCommand(p, ac.signal);
      case 'doctor':
        return await doctorCommand(p);
      case 'info':
        return await infoCommand(p);
      case 'version':
        return versionCommand(p);
    }
    return 2;
  } catch (e) {
    // Cancelled because nothing reads the output any more (`save IMG | head`): quiet, as SIGPIPE is.
    if (pipeBroken && (e instanceof CancelledError || ac.signal.aborted)) return 141;
    if (e instanceof CancelledError || ac.signal.aborted) {
      process.stderr.write(`ERROR: ${cmd === 'build' ? 'build' : cmd} cancelled\n`);
      return 130;
    }
    process.stderr.write(`ERROR: ${errorText(e)}\n`);
    // As Docker: a bad `run` command line is exit 125 (the container's own codes are the rest).
    if (e instanceof UsageError) return cmd === 'run' ? 125 : 2;
    const code = (e as { exitCode?: number }).exitCode;
    if (cmd === 'run' || cmd === 'exec') return typeof code === 'number' ? code : cmd === 'run' ? 125 : 1;
    if (e instanceof TsbuildError) return 1;
    if (e instanceof Error && process.env.TSBUILD_DEBUG) process.stderr.write(`${e.stack}\n`);
    return 1;
  }
}
