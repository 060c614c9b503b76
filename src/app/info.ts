/** `info`: the store, its default driver, and what this kernel and machine support. */
import fs from 'node:fs';
import os from 'node:os';
import { driverSupport } from '../snapshotter/index.js';
import { AUTO_SIZE, AUTO_USER, autoRanges, delegatedToUser, fuseOverlayUnavailable, describeCgroups, helperPath, hostCaps, probeOverlay, rootlessMapKind, slirpAvailable, emulationSummary } from '../runtime/index.js';
import { defaultDriver } from '../store/index.js';

export interface Info {
  root: string;
  snapshotter: string;
  drivers: Record<string, string>;
  kernel: string;
  cgroups: string;
  /** Capabilities this host lets tsbuild grant (what --privileged gives). */
  capabilities: number;
  helper: string;
  cpus: number;
  /** Rootless: how ids are mapped, and what that gives up; absent for root. */
  rootless?: string;
  /** As root: what --userns auto would draw from; absent when rootless. */
  userNamespaces?: string;
  /** Each platform qemu-user could emulate, and what runs its programs here (or why nothing can). */
  platforms: { platform: string; via?: string; error?: string }[];
}

function usernsText(): string | undefined {
  if (rootlessMapKind()) return undefined;
  const uid = autoRanges('/etc/subuid'), gid = autoRanges('/etc/subgid');
  const per = '--uidmap/--gidmap give a container a user namespace of its own';
  if (uid.length === 0 || gid.length === 0) return `${per}; --userns auto needs a range for the user "${AUTO_USER}" in ${uid.length === 0 ? '/etc/subuid' : '/etc/subgid'}`;
  const n = (r: { count: number }[]) => r.reduce((a, x) => a + x.count, 0);
  return `${per}; --userns auto draws from "${AUTO_USER}": ${n(uid)} uids, ${n(gid)} gids (${Math.floor(Math.min(n(uid), n(gid)) / AUTO_SIZE)} blocks of ${AUTO_SIZE})`;
}

function rootlessText(): string | undefined {
  const kind = rootlessMapKind();
  if (!kind) return undefined;
  let map = '';
  try {
    map = fs.readFileSync('/proc/self/uid_map', 'utf8').trim().split('\n').map((l) => l.trim().split(/\s+/).join(' ')).join(', ');
  } catch {
    // unreadable: the kind alone is said
  }
  const ids = kind === 'single' ? 'only the user\'s own id (chown to other ids fails)' : 'the user and its /etc/subuid range';
  const nets = slirpAvailable() ? 'networks slirp4netns (default), host, none' : 'networks host (default), none (install slirp4netns for a network of its own and -p)';
  const limits = delegatedToUser() ? 'cgroup limits in the delegated v2 subtree' : 'no cgroup limits (no cgroup delegated to this user)';
  return `yes: user namespace mapping ${ids} [inside outside count: ${map}]; ${nets}; ${limits}; no device nodes from images`;
}

function overlayProbe(): string | undefined {
  return probeOverlay(fs.mkdtempSync(`${os.tmpdir()}/tsb-info-`));
}

export function info(root: string): Info {
  fs.mkdirSync(root, { recursive: true });
  return {
    root,
    snapshotter: defaultDriver(root),
    drivers: driverSupport(root, overlayProbe, fuseOverlayUnavailable),
    kernel: os.release(),
    cgroups: describeCgroups(),
    capabilities: hostCaps().size,
    helper: helperPath(),
    cpus: os.availableParallelism(),
    rootless: rootlessText(),
    userNamespaces: usernsText(),
    platforms: emulationSummary(),
  };
}
