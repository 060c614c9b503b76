/** How this process started: the startup snapshot's blob, when `bin/tsbuild` started Node from it. */
export function snapshotBlob(): string | undefined {
  const i = process.execArgv.findIndex((a) => a === '--snapshot-blob' || a.startsWith('--snapshot-blob='));
  if (i < 0) return undefined;
  const a = process.execArgv[i]!;
  return a.includes('=') ? a.slice(a.indexOf('=') + 1) : process.execArgv[i + 1];
}
