/** Small output helpers shared by the CLI's listings. */

/** Sizes as Docker prints them: decimal units, 3 significant digits. */
export function humanSize(n: number): string {
  const u = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n < 10 && i > 0 ? n.toFixed(2) : n < 100 && i > 0 ? n.toFixed(1) : Math.round(n)}${u[i]}`;
}

/** Left-aligned columns, three spaces apart; the last column is not padded. */
export function table(rows: string[][]): string {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]! + 3))).join('')).join('\n') + '\n';
}

/** Docker's "N units ago". */
export function ago(iso: string | undefined): string {
  if (!iso) return 'N/A';
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.floor(s)} seconds ago`;
  if (s < 3600) return `${Math.floor(s / 60)} minutes ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} hours ago`;
  if (s < 86400 * 365) return `${Math.floor(s / 86400)} days ago`;
  return `${Math.floor(s / (86400 * 365))} years ago`;
}
