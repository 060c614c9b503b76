/**
 * The one path from a prepared snapshot to a running process, shared by build RUN steps and
 * `tsbuild run`: the snapshot's layer directories → the user looked up in the image's own
 * /etc/passwd and /etc/group → HOME and PATH defaults → generated /etc files → the sandbox spec →
 * mount stubs noted → the helper runs it → stubs removed from the writable layer. The caller owns the
 * snapshot (prepares it before, commits or removes it after) and the scratch directory.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DEFAULT_PATH } from '../image/index.js';
import type { Mount } from '../snapshotter/index.js';
import { runSpec, type RunResult, type SpawnOptions } from './helper.js';
import { layerDirs, missingMountPoints, readFileInLayers, removeMountStubs } from './layers.js';
import { buildSpec, mountDestinations, type NetworkMode, type SpecMount } from './spec.js';
import { resolveUser } from './user.js';
import { writeEtcFiles } from './etc.js';

export interface ContainerOptions {
  /** The mounts of the container's writable snapshot, as its snapshotter gives them. */
  rootMounts: Mount[];
  /** Where the container's writes land on the host (overlay upperdir, a native copy), for stub removal. */
  writableDir: () => Promise<string | undefined>;
  /** The caller's scratch directory: the root mount point and generated /etc files go here. */
  workDir: string;
  args: string[];
  /** KEY=VALUE; HOME (from the user's passwd entry) and PATH are added when missing. */
  env: string[];
  cwd: string;
  /** USER spec (`name`, `uid`, `name:group`, …), resolved in the image; empty is root. */
  user: string;
  hostname: string;
  network: NetworkMode;
  terminal?: boolean;
  init?: boolean;
  readonlyRoot?: boolean;
  /** All capabilities, nothing masked (RUN --security=insecure). */
  privileged?: boolean;
  extraMounts?: SpecMount[];
}

function hasVar(env: string[], name: string): boolean {
  return env.some((e) => e === name || e.startsWith(`${name}=`));
}

export async function runContainer(o: ContainerOptions, io: SpawnOptions): Promise<RunResult> {
  const dirs = layerDirs(o.rootMounts);
  const user = resolveUser(o.user, readFileInLayers(dirs, '/etc/passwd'), readFileInLayers(dirs, '/etc/group'));
  const env = [...o.env];
  if (!hasVar(env, 'PATH')) env.unshift(`PATH=${DEFAULT_PATH}`);
  if (!hasVar(env, 'HOME')) env.push(`HOME=${user.home}`);
  const rootPath = path.join(o.workDir, 'rootfs');
  fs.mkdirSync(rootPath, { recursive: true });
  const spec = buildSpec({
    rootPath,
    rootMounts: o.rootMounts,
    args: o.args,
    env,
    cwd: o.cwd || '/',
    uid: user.uid,
    gid: user.gid,
    additionalGids: user.additionalGids,
    hostname: o.hostname,
    network: o.network,
    terminal: o.terminal,
    init: o.init,
    readonlyRoot: o.readonlyRoot,
    privileged: o.privileged,
    etcFiles: writeEtcFiles(path.join(o.workDir, 'etc'), o.hostname, o.network),
    extraMounts: o.extraMounts,
  });
  // Mount points the image lacked are created by the helper; they must not end up in the layer.
  const stubs = missingMountPoints(dirs, mountDestinations(spec).map((m) => m.path));
  try {
    return await runSpec(spec, io);
  } finally {
    const upper = await o.writableDir();
    if (upper) removeMountStubs(upper, stubs);
  }
}
