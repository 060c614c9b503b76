/** How this process started: the startup snapshot's blob, when `bin/tsbuild` started Node from it. */
export function snapshotBlob(): string | undefined {
  const i = process.execArgv.findIndex((a) => a === '--snapshot-blob' || a.startsWith('--snapshot-blob='));
  if (i < 0) return undefined;
  const a = process.execArgv[i]!;
  return a.includes('=') ? a.slice(a.indexOf('=') + 1) : process.execArgv[i + 1];
}

let fromSingleExecutable = false;

/**
 * Called by the snapshot's main when no `--snapshot-blob` started it: the snapshot came from the
 * single executable (dist/bundle/tsbuild-sea), a node binary that holds it. Told rather than found
 * with node:sea, which Node 20 has only from 20.12.
 */
export function startedAsSingleExecutable(): void {
  fromSingleExecutable = true;
}

/** The single executable this process is, when it is one. */
export function singleExecutable(): string | undefined {
  return fromSingleExecutable ? process.execPath : undefined;
}

/**
 * The command that starts this same CLI again (detached monitors, `exec -d`, the user namespace),
 * the arguments to follow: the single executable takes them as they are; Node takes its own options
 * and the script (or `--` after `--snapshot-blob BLOB`, which the snapshot's main put back as argv[1]).
 */
export function selfCommand(): string[] {
  return fromSingleExecutable ? [process.execPath] : [process.execPath, ...process.execArgv, process.argv[1]!];
}
