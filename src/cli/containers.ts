/** Container commands after `run`: ps, rm, stop, kill, wait, start, restart, pause, rename, top, logs, exec, cp, attach; and the hidden monitor. */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  ago, attachContainer, containerLogs, copy, execContainer, execDetached, inspectContainer, killContainer, parseDetachKeys, type ExecRequest, listContainers, monitorContainer, openStore, parseLogTime, pauseContainer,
  portLines, portsText, pruneContainers, humanSize, removeContainers, renameContainer, restartContainer, startContainer, statusText, stopContainer, table, topContainer, waitContainer, type MonitorReport,
} from '../app/index.js';
import { TsbuildError, UsageError } from '../errors/index.js';
import { confirmed, DECLINED } from './ask.js';
import { flagBool, flagList, flagStr, helpFlag, eachObject, rootFlag, storeFrom, untilFilter, type FlagSpec, type Parsed, templateFormat } from './args.js';
import { formatFlag } from './images.js';
import { formatRows } from './template.js';
import { selfCommand } from './startup.js';

const common: FlagSpec[] = [rootFlag, helpFlag];

/** How this CLI starts a container's monitor: this same program, hidden command `__monitor`. */
export function monitorCommand(): string[] {
  return [...selfCommand(), '__monitor'];
}

function need(p: Parsed, what: string, synopsis: string): string[] {
  if (p.positional.length === 0) throw new UsageError(`${what} needs a container: tsbuild ${what} ${synopsis}`);
  return p.positional;
}

/** Runs `fn` for each container; like Docker, prints each name done, reports each failure, and fails if any did. */
const each = (refs: string[], fn: (ref: string) => Promise<void>): Promise<number> => eachObject(refs, fn);

export const psFlags: FlagSpec[] = [
  ...common,
  { name: 'all', short: 'a', type: 'bool', help: 'show all containers (default: running ones)' },
  { name: 'quiet', short: 'q', type: 'bool', help: 'only ids' },
  { name: 'filter', type: 'list', arg: 'status=…|name=…|id=…', help: 'only containers that match (repeatable)' },
  { name: 'no-trunc', type: 'bool', help: 'full ids and commands' },
  formatFlag,
];

export async function psCommand(p: Parsed): Promise<number> {
  const filters = flagList(p, 'filter').map((f) => {
    const [k, v = ''] = f.split(/=(.*)/s);
    if (!['status', 'name', 'id'].includes(k!)) throw new UsageError(`--filter ${f}: use status=…, name=… or id=…`);
    return { k: k!, v };
  });
  const statuses = filters.filter((f) => f.k === 'status').map((f) => f.v);
  for (const s of statuses) if (!['created', 'running', 'paused', 'restarting', 'exited', 'dead'].includes(s)) throw new UsageError(`--filter status=${s}: use created, running, paused, restarting, exited or dead`);
  const noTrunc = flagBool(p, 'no-trunc');
  const list = listContainers(await storeFrom(p), { all: flagBool(p, 'all') || statuses.length > 0 })
    .filter((c) => statuses.length === 0 || statuses.includes(c.status))
    .filter((c) => filters.filter((f) => f.k === 'name').every((f) => c.name.includes(f.v)))
    .filter((c) => filters.filter((f) => f.k === 'id').every((f) => c.id.startsWith(f.v)))
    .map((c) => {
      const cmd = c.command.join(' ');
      return {
        ID: noTrunc ? c.id : c.id.slice(0, 12), Image: c.image, Command: JSON.stringify(noTrunc || cmd.length <= 20 ? cmd : `${cmd.slice(0, 19)}…`), CreatedAt: c.created,
        RunningFor: ago(c.created), Status: statusText(c, ago), State: c.status, Names: c.name, Ports: portsText(c),
      };
    });
  const format = templateFormat(p);
  if (format !== undefined) process.stdout.write(formatRows(format, list));
  else if (flagBool(p, 'quiet')) process.stdout.write(list.map((c) => `${c.ID}\n`).join(''));
  else process.stdout.write(table([['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES'], ...list.map((c) => [c.ID, c.Image, c.Command, c.RunningFor, c.Status, c.Ports, c.Names])]));
  return 0;
}

export const rmFlags: FlagSpec[] = [
  ...common,
  { name: 'force', short: 'f', type: 'bool', help: 'kill and remove a running container' },
  { name: 'volumes', short: 'v', type: 'bool', help: "remove the container's anonymous volumes (those no other container uses)" },
];
export async function rmCommand(p: Parsed): Promise<number> {
  const refs = need(p, 'rm', '[-f] CONTAINER [CONTAINER...]');
  const store = await storeFrom(p);
  return each(refs, (ref) => removeContainers(store, [ref], { force: flagBool(p, 'force'), volumes: flagBool(p, 'volumes') }));
}

export const stopFlags: FlagSpec[] = [
  ...common,
  { name: 'time', short: 't', type: 'string', arg: 'SECONDS', help: 'seconds to wait before SIGKILL (default: the container\'s --stop-timeout, else 10)' },
  { name: 'signal', short: 's', type: 'string', arg: 'SIGNAL', help: 'signal to send first (default: the container\'s stop signal)' },
];
function seconds(p: Parsed): number | undefined {
  const t = flagStr(p, 'time');
  if (t === undefined) return undefined;
  if (!/^-?\d+$/.test(t)) throw new UsageError(`--time ${t}: use a whole number of seconds (-1 waits for ever)`);
  return parseInt(t, 10);
}
export async function stopCommand(p: Parsed): Promise<number> {
  const refs = need(p, 'stop', '[-t SECONDS] CONTAINER [CONTAINER...]');
  const store = await storeFrom(p);
  const timeout = seconds(p);
  return each(refs, (ref) => stopContainer(store, ref, { timeout, signal: flagStr(p, 'signal') }));
}
export async function restartCommand(p: Parsed): Promise<number> {
  const refs = need(p, 'restart', '[-t SECONDS] CONTAINER [CONTAINER...]');
  const store = await storeFrom(p);
  const timeout = seconds(p);
  return each(refs, (ref) => restartContainer(store, ref, monitorCommand(), timeout));
}

export const killFlags: FlagSpec[] = [...common, { name: 'signal', short: 's', type: 'string', arg: 'SIGNAL', help: 'signal to send (default SIGKILL)' }];
export async function killCommand(p: Parsed): Promise<number> {
  const refs = need(p, 'kill', '[-s SIGNAL] CONTAINER [CONTAINER...]');
  const store = await storeFrom(p);
  return each(refs, (ref) => killContainer(store, ref, flagStr(p, 'signal')));
}

export const startFlags: FlagSpec[] = [...common, { name: 'attach', short: 'a', type: 'bool', help: "attach to the container's output" }];
export async function startCommand(p: Parsed): Promise<number> {
  const refs = need(p, 'start', 'CONTAINER [CONTAINER...]');
  const store = await storeFrom(p);
  if (flagBool(p, 'attach')) {
    if (refs.length > 1) throw new UsageError('start -a takes one container');
    await startContainer(store, refs[0]!, monitorCommand());
    return attachContainer(store, refs[0]!, { stdout: process.stdout });
  }
  return each(refs, (ref) => startContainer(store, ref, monitorCommand()));
}

export async function waitCommand(p: Parsed): Promise<number> {
  const refs = need(p, 'wait', 'CONTAINER [CONTAINER...]');
  const store = await storeFrom(p);
  for (const ref of refs) process.stdout.write(`${await waitContainer(store, ref)}\n`);
  return 0;
}

export async function pauseCommand(p: Parsed, pause: boolean): Promise<number> {
  const refs = need(p, pause ? 'pause' : 'unpause', 'CONTAINER [CONTAINER...]');
  const store = await storeFrom(p);
  return each(refs, (ref) => pauseContainer(store, ref, pause));
}

export async function renameCommand(p: Parsed): Promise<number> {
  if (p.positional.length !== 2) throw new UsageError('rename takes two names: tsbuild rename CONTAINER NEW_NAME');
  renameContainer(await storeFrom(p), p.positional[0]!, p.positional[1]!);
  return 0;
}

/** `port CONTAINER [PRIVATE_PORT[/PROTO]]`. */
export async function portCommand(p: Parsed): Promise<number> {
  if (p.positional.length < 1 || p.positional.length > 2) throw new UsageError('port takes a container and optionally a port: tsbuild port CONTAINER [PRIVATE_PORT[/PROTO]]');
  const [ref, want] = p.positional;
  const c = (await storeFrom(p)).containers.find(ref!);
  const lines = portLines(c, want);
  if (want !== undefined && lines.length === 0) throw new TsbuildError('NO_PORT', `Error: No public port '${want.includes('/') ? want : `${want}/tcp`}' published for ${ref}`);
  process.stdout.write(lines.map((l) => `${l}\n`).join(''));
  return 0;
}

export async function topCommand(p: Parsed): Promise<number> {
  const [ref] = need(p, 'top', 'CONTAINER');
  const rows = topContainer(await storeFrom(p), ref!);
  process.stdout.write(table([['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD'], ...rows.map((r) => [r.UID, r.PID, r.PPID, r.C, r.STIME, r.TTY, r.TIME, r.CMD])]));
  return 0;
}

export const logsFlags: FlagSpec[] = [
  ...common,
  { name: 'follow', short: 'f', type: 'bool', help: 'keep printing new output until the container stops' },
  { name: 'tail', short: 'n', type: 'string', arg: 'N|all', help: 'only the last N lines' },
  { name: 'since', type: 'string', arg: 'TIME', help: 'only output since a time (2026-01-02T15:04:05Z, a Unix time, or 10m)' },
  { name: 'until', type: 'string', arg: 'TIME', help: 'only output before a time' },
  { name: 'timestamps', short: 't', type: 'bool', help: 'prefix each line with its time' },
];
export async function logsCommand(p: Parsed): Promise<number> {
  const [ref] = need(p, 'logs', '[-f] [--tail N] CONTAINER');
  const tail = flagStr(p, 'tail');
  if (tail !== undefined && tail !== 'all' && !/^\d+$/.test(tail)) throw new UsageError(`--tail ${tail}: use a number of lines or all`);
  const since = flagStr(p, 'since');
  const until = flagStr(p, 'until');
  const ac = new AbortController();
  const onSig = () => ac.abort();
  process.once('SIGINT', onSig);
  try {
    const entries = containerLogs(await storeFrom(p), ref!, {
      tail: tail === undefined || tail === 'all' ? undefined : parseInt(tail, 10),
      since: since ? parseLogTime(since, '--since') : undefined,
      until: until ? parseLogTime(until, '--until') : undefined,
      follow: flagBool(p, 'follow'),
      signal: ac.signal,
    });
    const ts = flagBool(p, 'timestamps');
    for await (const e of entries) (e.stream === 'stderr' ? process.stderr : process.stdout).write(ts ? `${e.time} ${e.log}` : e.log);
  } finally {
    process.off('SIGINT', onSig);
  }
  return 0;
}

export const execFlags: FlagSpec[] = [
  ...common,
  { name: 'interactive', short: 'i', type: 'bool', help: 'keep stdin open' },
  { name: 'tty', short: 't', type: 'bool', help: 'allocate a pseudo-terminal' },
  { name: 'env', short: 'e', type: 'list', arg: 'KEY=VALUE', help: 'set an environment variable (repeatable)' },
  { name: 'user', short: 'u', type: 'string', arg: 'user[:group]', help: 'user to run as (default: the container\'s)' },
  { name: 'workdir', short: 'w', type: 'string', arg: 'dir', help: 'working directory (default: the container\'s)' },
  { name: 'privileged', type: 'bool', help: 'every capability, no seccomp filter, for this process' },
  { name: 'detach', short: 'd', type: 'bool', help: 'run the command in the background' },
];
export async function execCommand(p: Parsed): Promise<number> {
  const [ref, ...args] = p.positional;
  if (!ref || args.length === 0) throw new UsageError('exec needs a container and a command: tsbuild exec [OPTIONS] CONTAINER COMMAND [ARG...]');
  const tty = flagBool(p, 'tty');
  const env = flagList(p, 'env').map((e) => {
    if (e.startsWith('=') || e === '') throw new UsageError(`-e ${e}: the variable name is empty`);
    return e.includes('=') ? e : process.env[e] === undefined ? '' : `${e}=${process.env[e]}`;
  }).filter(Boolean);
  const store = await storeFrom(p);
  const req = { args, env, user: flagStr(p, 'user'), workdir: flagStr(p, 'workdir'), tty, interactive: flagBool(p, 'interactive'), privileged: flagBool(p, 'privileged') };
  if (flagBool(p, 'detach')) {
    await execDetached(store, ref, req, [...selfCommand(), '__exec']);
    return 0;
  }
  let raw = false;
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];
  let kill: ((s: NodeJS.Signals) => void) | undefined;
  const handlers = signals.map((s) => [s, () => kill?.(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  try {
    if (tty && process.stdin.isTTY) {
      process.stdin.setRawMode(true);
      raw = true;
    }
    return await execContainer(store, ref, req, {
      onStart: (info) => (kill = info.kill),
    });
  } finally {
    if (raw) process.stdin.setRawMode(false);
    for (const [s, h] of handlers) process.off(s, h);
  }
}

export const cpFlags: FlagSpec[] = [...common, { name: 'archive', short: 'a', type: 'bool', help: 'keep the source\'s uid and gid' }];
export async function cpCommand(p: Parsed): Promise<number> {
  if (p.positional.length !== 2) throw new UsageError('cp takes a source and a destination: tsbuild cp CONTAINER:SRC DEST | tsbuild cp SRC CONTAINER:DEST');
  await copy(await storeFrom(p), { src: p.positional[0]!, dest: p.positional[1]!, archive: flagBool(p, 'archive') }, { stdin: process.stdin, stdout: process.stdout });
  return 0;
}

export const attachFlags: FlagSpec[] = [
  ...common,
  { name: 'no-stdin', type: 'bool', help: 'do not send input to the container' },
  { name: 'detach-keys', type: 'string', arg: 'KEYS', help: 'keys that detach and leave the container running (default ctrl-p,ctrl-q)' },
];
export async function attachCommand(p: Parsed): Promise<number> {
  const [ref] = need(p, 'attach', 'CONTAINER');
  const keys = flagStr(p, 'detach-keys');
  const store = await storeFrom(p);
  const ac = new AbortController();
  // With a terminal, keys go to the container as typed (raw mode): ctrl-c to its process, the detach
  // keys (ctrl-p ctrl-q) to leave it running. Without one, Ctrl-C leaves it running.
  const tty = process.stdin.isTTY && !flagBool(p, 'no-stdin') && (inspectContainer(store, ref).Config as { Tty?: boolean }).Tty === true;
  const onSig = () => ac.abort();
  process.once('SIGINT', onSig);
  if (tty) process.stdin.setRawMode(true);
  try {
    return await attachContainer(store, ref!, {
      stdin: flagBool(p, 'no-stdin') ? undefined : process.stdin,
      stdout: process.stdout,
      signal: ac.signal,
      detachKeys: keys !== undefined ? parseDetachKeys(keys) : undefined,
    });
  } finally {
    if (tty) process.stdin.setRawMode(false);
    process.off('SIGINT', onSig);
    process.stdin.pause();
  }
}

/** `__exec ROOT DRIVER ID REQUEST`: the process behind `exec -d`; reports its start on fd 3. */
export async function execMain(args: string[]): Promise<number> {
  const [root, driver, id, json] = args;
  if (!root || !driver || !id || !json) throw new UsageError('__exec is internal: tsbuild exec -d starts it');
  const chan = new net.Socket({ fd: 3, readable: false, writable: true });
  chan.on('error', () => undefined);
  const store = await openStore(root, driver, { recover: false });
  try {
    return await execContainer(store, id, JSON.parse(json) as ExecRequest, {
      stdin: 'ignore', stdout: 'ignore', stderr: 'ignore',
      onStart: () => chan.end('{"ok":true}\n'),
    });
  } catch (e) {
    chan.end(JSON.stringify({ error: (e as Error).message, code: (e as { code?: string }).code, exitCode: (e as { exitCode?: number }).exitCode ?? 126 }) + '\n');
    return 1;
  }
}

/**
 * `__monitor ROOT DRIVER`: a detached container's monitor (started by run -d and start). The id comes
 * on fd 3 once the container exists; the answer goes back on fd 3.
 */
export async function monitorMain(args: string[]): Promise<number> {
  const [root, driver] = args;
  if (!root || !driver) throw new UsageError('__monitor is internal: tsbuild starts it');
  const chan = new net.Socket({ fd: 3, readable: true, writable: true });
  chan.on('error', () => undefined);
  const id = new Promise<string | undefined>((resolve) => {
    let text = '';
    chan.on('data', (d: Buffer) => {
      text += d.toString();
      if (text.includes('\n')) resolve(text.split('\n')[0]!);
    });
    chan.on('end', () => resolve(undefined));
    chan.on('close', () => resolve(undefined));
  });
  // The starter recovered the store a moment ago: the monitor opens it without recovering again.
  const [store, ctr] = await Promise.all([openStore(root, driver, { recover: false }), id]);
  if (!ctr) return 0; // the container was not made after all
  // Nobody reads this process's stderr: what would go there goes to the container's monitor.log.
  const crash = (e: unknown) => {
    try {
      fs.appendFileSync(path.join(store.containers.dirOf(ctr), 'monitor.log'), `${new Date().toISOString()} ${e instanceof Error ? e.stack : String(e)}\n`);
    } finally {
      process.exit(1);
    }
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);
  let reported = false;
  const report = (r: MonitorReport) => {
    if (reported) return;
    reported = true;
    chan.end(JSON.stringify(r) + '\n');
  };
  return monitorContainer(store, ctr, report);
}

export const containerPruneFlags: FlagSpec[] = [
  ...common,
  { name: 'force', short: 'f', type: 'bool', help: 'do not ask on a terminal' },
  { name: 'filter', type: 'list', arg: 'until=DURATION', help: 'only containers created longer ago than this (e.g. until=24h)' },
];

/** `tsbuild container prune`: every stopped container, as Docker's. */
export async function containerPruneCommand(p: Parsed): Promise<number> {
  if (!(await confirmed(p, 'This will remove all stopped containers.'))) return DECLINED;
  const r = await pruneContainers(await storeFrom(p), { untilMs: untilFilter(p) });
  if (r.removed.length > 0) process.stdout.write(`Deleted Containers:\n${r.removed.map((id) => `${id}\n`).join('')}\n`);
  process.stdout.write(`Total reclaimed space: ${humanSize(r.bytes)}\n`);
  return 0;
}
