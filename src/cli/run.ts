/** `tsbuild run`: argv → a RunRequest; the terminal and signals are wired here. */
import { currentLimits, parseAddHosts, parseLimits, parseMemory, parseSecurity, parseUlimits, run, runDetached } from '../app/index.js';
import { monitorCommand } from './containers.js';
import { UsageError } from '../errors/index.js';
import { flagBool, flagList, flagStr, helpFlag, insecureFlag, limitFlags, limitValues, logToStderr, registryOptions, rootFlag, storeFrom, type FlagSpec, type Parsed } from './args.js';

export const runFlags: FlagSpec[] = [
  { name: 'rm', type: 'bool', help: 'remove the container when it exits' },
  { name: 'detach', short: 'd', type: 'bool', help: 'run in the background and print the container id' },
  { name: 'restart', type: 'string', arg: 'no|on-failure[:N]|always|unless-stopped', help: 'restart policy when the container exits' },
  { name: 'stop-signal', type: 'string', arg: 'SIGNAL', help: "signal for stop (default: the image's STOPSIGNAL, else SIGTERM)" },
  { name: 'stop-timeout', type: 'string', arg: 'SECONDS', help: 'seconds stop waits before SIGKILL (default 10)' },
  { name: 'health-cmd', type: 'string', arg: 'CMD', help: 'health check command (run with /bin/sh -c)' },
  { name: 'health-interval', type: 'string', arg: 'DURATION', help: 'time between checks (default 30s)' },
  { name: 'health-timeout', type: 'string', arg: 'DURATION', help: 'time a check may take (default 30s)' },
  { name: 'health-start-period', type: 'string', arg: 'DURATION', help: 'failures in this time do not count (default 0s)' },
  { name: 'health-retries', type: 'string', arg: 'N', help: 'failures in a row that make it unhealthy (default 3)' },
  { name: 'no-healthcheck', type: 'bool', help: "disable the image's HEALTHCHECK" },
  { name: 'log-opt', type: 'list', arg: 'max-size=10m|max-file=3', help: 'json-file log options (default max-size=10m, max-file=3)' },
  { name: 'interactive', short: 'i', type: 'bool', help: 'keep stdin open' },
  { name: 'tty', short: 't', type: 'bool', help: 'allocate a pseudo-terminal' },
  { name: 'env', short: 'e', type: 'list', arg: 'KEY=VALUE', help: 'set an environment variable (repeatable)' },
  { name: 'workdir', short: 'w', type: 'string', arg: 'dir', help: 'working directory inside the container' },
  { name: 'user', short: 'u', type: 'string', arg: 'user[:group]', help: 'user to run as' },
  { name: 'name', type: 'string', arg: 'name', help: 'container name' },
  { name: 'entrypoint', type: 'string', arg: 'cmd', help: "override the image's ENTRYPOINT" },
  { name: 'hostname', type: 'string', arg: 'name', help: 'container hostname (default: short id)' },
  { name: 'network', type: 'string', arg: 'bridge|host|none|container:NAME|slirp4netns', help: 'network (default bridge, rootless slirp4netns; TSBUILD_NETWORK sets another default)' },
  { name: 'userns', type: 'string', arg: 'host|auto[:size=N]|keep-id', help: "user namespace: host (tsbuild's own, default); auto: the container's root is a free block of /etc/subuid's \"containers\" range (root only); keep-id: your own uid and gid inside (as root: every id as itself, in a namespace of its own)" },
  { name: 'uidmap', type: 'list', arg: 'C:H:N', help: 'container uids C..C+N-1 are host uids H..H+N-1 (a user namespace of its own; root only)' },
  { name: 'gidmap', type: 'list', arg: 'C:H:N', help: 'the same for gids (default: as --uidmap)' },
  { name: 'publish', short: 'p', type: 'list', arg: '[IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp]', help: "publish a container's port on the host (ranges allowed; no host port: a free one)" },
  { name: 'publish-all', short: 'P', type: 'bool', help: "publish every EXPOSEd port on a free host port" },
  { name: 'mac-address', type: 'string', arg: 'MAC', help: "the container's MAC address on its network" },
  { name: 'network-alias', type: 'list', arg: 'NAME', help: "another name for the container on its user network's DNS" },
  { name: 'ip', type: 'string', arg: 'IPv4', help: 'the address on a user network' },
  { name: 'dns', type: 'list', arg: 'IP', help: 'a DNS server (on a user network: where its resolver forwards)' },
  { name: 'dns-search', type: 'list', arg: 'DOMAIN', help: 'a DNS search domain' },
  { name: 'dns-option', type: 'list', arg: 'OPTION', help: 'a resolv.conf option, e.g. ndots:2' },
  { name: 'init', type: 'bool', help: 'run an init as PID 1 that reaps zombies and forwards signals' },
  { name: 'read-only', type: 'bool', help: 'mount the root filesystem read-only' },
  { name: 'volume', short: 'v', type: 'list', arg: '[NAME|HOST_PATH:]PATH[:ro|rw|nocopy|rslave…]', help: 'a volume (made on first use, filled from the image) or a bind of a host path' },
  { name: 'mount', type: 'list', arg: 'type=bind|volume|tmpfs,source=…,target=…[,readonly]', help: "a mount, with Docker's --mount keys (bind-propagation, volume-nocopy, tmpfs-size, tmpfs-mode)" },
  { name: 'tmpfs', type: 'list', arg: 'PATH[:size=64m,mode=1777,exec]', help: 'a tmpfs at PATH' },
  { name: 'volumes-from', type: 'list', arg: 'CONTAINER[:ro|rw]', help: "another container's volumes and binds" },
  rootFlag,
  { name: 'snapshotter', type: 'string', arg: 'driver', help: 'storage driver: overlayfs (default), fuse-overlayfs, native, btrfs, zfs' },
  insecureFlag,
  { name: 'pull', type: 'string', arg: 'missing|always|never', help: 'pull the image before running (default missing; also TSBUILD_PULL)' },
  { name: 'platform', type: 'string', arg: 'os/arch[/variant]', help: "the image's platform (pulled for it); another than this machine's runs under qemu-user emulation" },
  { name: 'privileged', type: 'bool', help: 'every capability this host can grant, host devices, no seccomp, writable /sys' },
  { name: 'cap-add', type: 'list', arg: 'CAP', help: 'add a capability (or ALL)' },
  { name: 'cap-drop', type: 'list', arg: 'CAP', help: 'drop a capability (or ALL)' },
  { name: 'device', type: 'list', arg: 'HOST[:CONTAINER][:rwm]', help: 'give the container a host device' },
  { name: 'add-host', type: 'list', arg: 'NAME:IP', help: 'an /etc/hosts entry (repeatable)' },
  { name: 'shm-size', type: 'string', arg: 'bytes', help: 'size of /dev/shm (default 64m)' },
  { name: 'security-opt', type: 'list', arg: 'seccomp=unconfined|PROFILE.json|no-new-privileges[=false]', help: 'security options' },
  ...limitFlags,
  helpFlag,
];

/** `-e K=V`, or a bare `-e K` taken from this process's environment (left out when unset). */
function envFlags(values: string[]): string[] {
  return values.flatMap((e) => {
    if (e.startsWith('=') || e === '') throw new UsageError(`-e ${e}: the variable name is empty`);
    if (e.includes('=')) return [e];
    const v = process.env[e];
    return v === undefined ? [] : [`${e}=${v}`];
  });
}

function intFlag(p: Parsed, name: string): number | undefined {
  const v = flagStr(p, name);
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v)) throw new UsageError(`--${name} ${v}: use a whole number`);
  return parseInt(v, 10);
}

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];

export async function runCommand(p: Parsed): Promise<number> {
  const [image, ...command] = p.positional;
  if (!image) throw new UsageError('run needs an image: tsbuild run [OPTIONS] IMAGE [COMMAND] [ARG...]');
  const tty = flagBool(p, 'tty');
  const request = {
    image,
    command,
    entrypoint: flagStr(p, 'entrypoint'),
    name: flagStr(p, 'name'),
    rm: flagBool(p, 'rm'),
    interactive: flagBool(p, 'interactive'),
    tty,
    env: envFlags(flagList(p, 'env')),
    workdir: flagStr(p, 'workdir'),
    user: flagStr(p, 'user'),
    hostname: flagStr(p, 'hostname'),
    // Checked by the app layer, which owns the message.
    network: flagStr(p, 'network') ?? process.env.TSBUILD_NETWORK,
    userns: flagStr(p, 'userns'),
    uidmap: flagList(p, 'uidmap'),
    gidmap: flagList(p, 'gidmap'),
    publish: flagList(p, 'publish'),
    publishAll: flagBool(p, 'publish-all'),
    mac: flagStr(p, 'mac-address'),
    aliases: flagList(p, 'network-alias'),
    ip: flagStr(p, 'ip'),
    dns: flagList(p, 'dns'),
    dnsSearch: flagList(p, 'dns-search'),
    dnsOptions: flagList(p, 'dns-option'),
    init: flagBool(p, 'init'),
    detach: flagBool(p, 'detach'),
    restart: flagStr(p, 'restart'),
    stopSignal: flagStr(p, 'stop-signal'),
    stopTimeout: intFlag(p, 'stop-timeout'),
    health: {
      cmd: flagStr(p, 'health-cmd'), interval: flagStr(p, 'health-interval'), timeout: flagStr(p, 'health-timeout'),
      startPeriod: flagStr(p, 'health-start-period'), retries: intFlag(p, 'health-retries'), none: flagBool(p, 'no-healthcheck'),
    },
    logOpts: flagList(p, 'log-opt'),
    readOnly: flagBool(p, 'read-only'),
    volumes: flagList(p, 'volume'),
    mounts: flagList(p, 'mount'),
    tmpfs: flagList(p, 'tmpfs'),
    volumesFrom: flagList(p, 'volumes-from'),
    pull: flagStr(p, 'pull'),
    platform: flagStr(p, 'platform'),
    limits: parseLimits(limitValues(p)),
    ulimits: parseUlimits(flagList(p, 'ulimit'), currentLimits),
    extraHosts: parseAddHosts(flagList(p, 'add-host')),
    shmSize: flagStr(p, 'shm-size') !== undefined ? parseMemory(flagStr(p, 'shm-size')!, '--shm-size') : undefined,
    security: parseSecurity({ privileged: flagBool(p, 'privileged'), capAdd: flagList(p, 'cap-add'), capDrop: flagList(p, 'cap-drop'), securityOpt: flagList(p, 'security-opt'), devices: flagList(p, 'device') }),
    ...registryOptions(p),
  };
  const store = await storeFrom(p);
  if (request.detach) {
    const id = await runDetached(store, request, monitorCommand(), { onEvent: (e) => (e.type === 'warning' ? process.stderr.write(`${e.message}\n`) : logToStderr(e)) });
    process.stdout.write(`${id}\n`);
    return 0;
  }
  // Signals sent to tsbuild go to the container (a PID 1 without a handler ignores them, as in Docker).
  // Before it starts (a pull, unpacking), they cancel instead.
  let kill: ((s: NodeJS.Signals) => void) | undefined;
  const ac = new AbortController();
  const handlers = FORWARDED.map((s) => [s, () => (kill ? kill(s) : ac.abort())] as const);
  for (const [s, h] of handlers) process.on(s, h);
  // Nothing reads the container's output any more (`tsbuild run IMG yes | head -2`): as a pipeline's
  // writer dies of SIGPIPE, the container is ended (SIGKILL: a PID 1 ignores SIGPIPE sent to it),
  // then removed as usual, and tsbuild exits 141.
  let piped = false;
  const onPipe = (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE' || piped) return;
    piped = true;
    if (kill) kill('SIGKILL');
    else ac.abort();
  };
  process.stdout.on('error', onPipe);
  let raw = false;
  try {
    const code = await run(store, request, {
      signal: ac.signal,
      onEvent: (e) => (e.type === 'warning' ? process.stderr.write(`${e.message}\n`) : logToStderr(e)),
      beforeStart: () => {
        if (tty && process.stdin.isTTY) {
          process.stdin.setRawMode(true);
          raw = true;
        }
      },
      onStart: (k) => (kill = k),
    });
    return piped ? 141 : code;
  } finally {
    if (raw) process.stdin.setRawMode(false);
    for (const [s, h] of handlers) process.off(s, h);
    process.stdout.off('error', onPipe);
  }
}
