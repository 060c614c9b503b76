/**
 * Names of temporary snapshots. Every snapshot a process makes for its own use (a RUN's active layer,
 * a read-only view for COPY --from or `-o type=local`, a container's writable layer) is named here and
 * nowhere else, so crash recovery can tell by the name alone whose it is and whether its owner is dead.
 * Committed layers are named by ChainID (`sha256:…`) and never match.
 */

/** The kinds of temporary snapshot: `active` (build steps, unpacking), `view` (read-only views), `ctr` (containers). */
export const TEMP_KINDS = ['active', 'view', 'ctr'] as const;
export type TempKind = (typeof TEMP_KINDS)[number];

let counter = 0;

/** A fresh key of `kind`, owned by this process (or `pid`); `tag` says what it is for (shown in listings). */
export function tempKey(kind: TempKind, tag: string, pid = process.pid): string {
  return `${kind}-${pid}-${Date.now().toString(36)}-${(counter++).toString(36)}-${tag}`;
}

// `view-export-<pid>-` is how versions before this naming scheme called `-o type=local` views.
const TEMP_RE = new RegExp(`^(?:${TEMP_KINDS.join('|')}|view-export)-(\\d+)-`);

/** The pid that owns a temporary snapshot key, or undefined for a key that is not temporary. */
export function tempKeyOwner(key: string): number | undefined {
  const m = TEMP_RE.exec(key);
  return m ? parseInt(m[1]!, 10) : undefined;
}
