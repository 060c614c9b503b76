/**
 * Why a cache key missed, in words: comparing this key's material with the last key the same step had.
 * Material keys are namespaced: `parent`, `op:FIELD`, `base`, `env:NAME`, `arg:NAME`, `file:PATH`, `src`,
 * `mount:N`, `url:URL`.
 */
/** A material path for people: a name that is not UTF-8 (keyed as NUL and hex) with its bytes as \\xNN. */
function shown(f: string): string {
  return f.replace(/\0([0-9a-f]*)/g, (_, h: string) => [...Buffer.from(h, 'hex')].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join(''));
}

export function explainMiss(now: Record<string, string>, before: Record<string, string> | undefined, opts: { parentStep?: string; maxFiles?: number } = {}): string {
  if (!before) return 'no cache record for this step yet (first build)';
  const keys = new Set([...Object.keys(now), ...Object.keys(before)]);
  const changed = [...keys].filter((k) => now[k] !== before[k]).sort();
  if (changed.length === 0) return 'the same inputs as last time, but the cached result was removed (pruned); rebuilding it';
  const reasons: string[] = [];
  if (changed.includes('parent')) reasons.push(`parent changed${opts.parentStep ? ` (${opts.parentStep})` : ''}`);
  if (changed.includes('base')) reasons.push(`base image now ${now['base'] ?? 'gone'}`);
  const args = changed.filter((k) => k.startsWith('arg:'));
  for (const a of args) reasons.push(`ARG ${a.slice(4)} changed ${before[a] ?? '(unset)'} → ${now[a] ?? '(unset)'}`);
  const envs = changed.filter((k) => k.startsWith('env:'));
  for (const e of envs) reasons.push(`ENV ${e.slice(4)} changed ${before[e] ?? '(unset)'} → ${now[e] ?? '(unset)'}`);
  const files = changed.filter((k) => /^(mount:\d+:)?file:/.test(k)).map((k) => k.replace(/^mount:\d+:/, '').slice(5));
  if (files.length) {
    const max = opts.maxFiles ?? 5;
    const has = (m: Record<string, string>, f: string) => Object.keys(m).some((k) => k === `file:${f}` || (k.startsWith('mount:') && k.endsWith(`:file:${f}`)));
    const label = (f: string) => (!has(now, f) ? `${shown(f)} (removed)` : !has(before, f) ? `${shown(f)} (added)` : shown(f));
    reasons.push(`${files.length} file${files.length > 1 ? 's' : ''} changed: ${files.slice(0, max).map(label).join(', ')}${files.length > max ? `, and ${files.length - max} more` : ''}`);
  }
  const fields = changed.filter((k) => k.startsWith('op:')).map((k) => k.slice(3));
  if (changed.some((k) => /^mount:\d+$/.test(k))) fields.push('--mount');
  // `op` alone is how keys were written before they were declared per field.
  if (fields.length || changed.includes('op')) reasons.push(`the instruction changed${fields.length ? ` (${fields.join(', ')})` : ''}`);
  const urls = changed.filter((k) => k.startsWith('url:'));
  for (const u of urls) reasons.push(`the content at ${u.slice(4)} changed`);
  if (changed.some((k) => /^mount:\d+:src$/.test(k))) reasons.push('a mounted stage changed');
  if (changed.includes('src')) reasons.push('the source stage changed');
  if (reasons.length === 0) reasons.push(`changed: ${changed.join(', ')}`);
  return reasons.join('; ');
}
