/** `tsbuild info`, `tsbuild parse`, `tsbuild verify`: small commands around the store and parser. */
import fs from 'node:fs';
import os from 'node:os';
import { describeDockerfile, dockerInfo, info, listContainers, listImages, migrateUserNamespace, storeRoot, verify } from '../app/index.js';
import { UsageError } from '../errors/index.js';
import { VERSION, flagStr, helpFlag, rootFlag, storeFrom, templateFormat, type FlagSpec, type Parsed } from './args.js';
import { formatRows } from './template.js';
import { createRenderer, type ProgressMode } from './progress.js';
import { singleExecutable, snapshotBlob } from './startup.js';

export const infoFlags: FlagSpec[] = [rootFlag, { name: 'format', short: 'f', type: 'string', arg: 'text|json|TEMPLATE', help: "output format: json, or a Go template over docker info's fields and tsbuild's ({{.Driver}}, {{.CgroupVersion}})" }, helpFlag];

/** How this process started: from the CLI's startup snapshot (bin/tsbuild) or by loading the bundle. */
function startup(): string {
  const exe = singleExecutable();
  if (exe) return `single executable (${exe})`;
  const blob = snapshotBlob();
  return blob ? `snapshot (${blob})` : 'bundle (bin/tsbuild starts the single executable or the snapshot when `npm run build` made them with this node binary)';
}

/** Whether bin/tsbuild started Node with V8's single-threaded GC (TSBUILD_GC=single). */
function gc(): string {
  return process.execArgv.includes('--single-threaded-gc') ? 'single-threaded' : 'parallel';
}

/**
 * Whether glibc's malloc asks for transparent huge pages (bin/tsbuild sets glibc.malloc.hugetlb=1
 * unless TSBUILD_THP=off or the user set it), and whether the kernel gives any.
 */
function malloc(): string {
  const m = /(?:^|:)glibc\.malloc\.hugetlb=([^:]*)/.exec(process.env.GLIBC_TUNABLES ?? '');
  if (!m || m[1] === '0') return 'default (4 KiB pages)';
  let thp = '';
  try {
    thp = /\[(\w+)\]/.exec(fs.readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'))?.[1] ?? '';
  } catch {
    // no THP support in this kernel
  }
  const what = m[1] === '1' ? 'transparent huge pages' : `huge pages (glibc.malloc.hugetlb=${m[1]})`;
  return thp === 'never' || (thp === '' && m[1] === '1') ? `${what} asked for, but this kernel gives none (transparent_hugepage: ${thp || 'absent'})` : what;
}

export async function infoCommand(p: Parsed): Promise<number> {
  const i = { ...info(storeRoot(flagStr(p, 'root'))), startup: startup(), gc: gc(), malloc: malloc() };
  const format = flagStr(p, 'format') === 'text' ? undefined : templateFormat(p);
  if (format !== undefined) {
    // Docker's fields (counts from the store) and tsbuild's own, in one object.
    const store = await storeFrom(p);
    const all = { ...dockerInfo(i, { containers: listContainers(store, { all: true }), images: new Set(listImages(store).map((x) => x.id)).size }, VERSION), ...i };
    process.stdout.write(format === '{{json .}}' ? JSON.stringify(all, null, 2) + '\n' : formatRows(format, [all]));
    return 0;
  }
  process.stdout.write(`Store:        ${i.root}\nSnapshotter:  ${i.snapshotter} (default; --snapshotter or config.json "snapshotter" change it)\n`);
  for (const [d, s] of Object.entries(i.drivers)) process.stdout.write(`  ${d.padEnd(14)} ${s}\n`);
  process.stdout.write(`Kernel:       ${i.kernel}\nCgroups:      ${i.cgroups}\nCapabilities: ${i.capabilities} grantable (--privileged gives these)\nHelper:       ${i.helper}\nSpawn:        ${i.spawn}\nPage cache:   ${i.pageCache}\nSmall files:  ${i.smallFiles}\nMounts:       ${i.mounts}\nCPUs:         ${i.cpus}\n`);
  process.stdout.write(`Rootless:     ${i.rootless ?? 'no (root)'}\nStartup:      ${i.startup}\nGC:           ${i.gc}\nMalloc:       ${i.malloc}\n`);
  if (i.userNamespaces) process.stdout.write(`User namespaces: ${i.userNamespaces}\n`);
  const runs = i.platforms.filter((p) => p.via);
  process.stdout.write(`Platforms:    ${runs.map((p) => `${p.platform}${p.via === 'native' ? '' : ' (emulated)'}`).join(', ')}\n`);
  for (const p of runs.filter((x) => x.via !== 'native')) process.stdout.write(`  ${p.platform.padEnd(14)} ${p.via}\n`);
  if (runs.length === 1) process.stdout.write('  others need qemu-user: install qemu-user-static (Debian: apt-get install qemu-user-static)\n');
  return 0;
}

export const versionFlags: FlagSpec[] = [{ name: 'format', short: 'f', type: 'string', arg: 'json|TEMPLATE', help: "a Go template over docker version's fields ({{.Client.Version}}, {{.Server.Version}})" }, helpFlag];

/** Go's names for Node's architectures, as Docker prints them. */
const GOARCH: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/**
 * `version`: one line, or Docker's Client/Server shape for a template. tsbuild has no daemon: the
 * "server" is this same program, so a script that checks `{{.Server.Version}}` finds it working.
 */
export function versionCommand(p: Parsed): number {
  if (p.positional.length > 0) throw new UsageError(`version takes no arguments, got ${p.positional.join(' ')}`);
  const format = templateFormat(p);
  if (format === undefined) {
    process.stdout.write(`tsbuild ${VERSION}\n`);
    return 0;
  }
  const side = { Version: VERSION, Os: 'linux', Arch: GOARCH[process.arch] ?? process.arch, NodeVersion: process.version };
  const v = { Client: { Platform: { Name: 'tsbuild' }, ...side }, Server: { Platform: { Name: 'tsbuild (daemonless: this program)' }, ...side, KernelVersion: os.release(), Components: [{ Name: 'tsbuild', Version: VERSION }] } };
  process.stdout.write(formatRows(format, [v]));
  return 0;
}

export const migrateFlags: FlagSpec[] = [rootFlag, helpFlag];

/** `system migrate`: end the rootless user namespace so the next command maps the current ranges. */
export async function migrateCommand(p: Parsed): Promise<number> {
  const r = await migrateUserNamespace(await storeFrom(p));
  process.stdout.write(r.ended ? `ended the user namespace (holder pid ${r.ended}); the next command makes a new one\n` : 'no rootless user namespace to end\n');
  return 0;
}

export const parseFlags: FlagSpec[] = [
  { name: 'file', short: 'f', type: 'string', arg: 'path', help: 'the Dockerfile (default ./Dockerfile; - for stdin)' },
  { name: 'format', type: 'string', arg: 'buildkit|json', help: 'output format (default buildkit)' },
  helpFlag,
];

export function parseCommand(p: Parsed): number {
  const file = flagStr(p, 'file') ?? p.positional[0] ?? 'Dockerfile';
  const format = flagStr(p, 'format') ?? 'buildkit';
  if (format !== 'buildkit' && format !== 'json') throw new UsageError(`--format ${format}: use buildkit or json`);
  let text: string;
  try {
    text = fs.readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch {
    throw new UsageError(`cannot read ${file}`);
  }
  process.stdout.write(describeDockerfile(text, file, format));
  return 0;
}

export const verifyFlags: FlagSpec[] = [rootFlag, { name: 'progress', type: 'string', arg: 'auto|tty|plain', help: 'progress output' }, helpFlag];

export async function verifyCommand(p: Parsed, signal: AbortSignal): Promise<number> {
  const ref = p.positional[0];
  if (!ref) throw new UsageError('verify needs an image: tsbuild verify IMAGE');
  const mode = (flagStr(p, 'progress') ?? 'auto') as ProgressMode;
  if (!['auto', 'tty', 'plain'].includes(mode)) throw new UsageError(`--progress ${mode}: use auto, tty or plain`);
  const render = createRenderer(mode);
  const r = await verify(await storeFrom(p), ref, {
    signal,
    onEvent: (e) => {
      if (e.type === 'solver') render.event(e.event);
      else if (e.type === 'log') render.info(e.line);
      else if (e.type === 'warning') render.warn(e.message, e.line);
    },
  }).finally(() => render.finish());
  process.stdout.write(
    r.same
      ? `verified: ${ref} rebuilds to the same digest ${r.expected}\n`
      : `MISMATCH: ${ref} is ${r.expected}, a rebuild gives ${r.rebuilt} (the build is not reproducible, or its inputs changed)\n`,
  );
  return r.same ? 0 : 1;
}
