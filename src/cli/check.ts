/** `tsbuild check [-f Dockerfile] [--format text|json|sarif] [CONTEXT]` and `build --check`. */
import fs from 'node:fs';
import path from 'node:path';
import { checkDockerfile, formatChecks, formatChecksSarif, CHECK_RULES } from '../app/index.js';
import { UsageError } from '../errors/index.js';
import { VERSION, flagStr, helpFlag, type FlagSpec, type Parsed } from './args.js';

export const checkFlags: FlagSpec[] = [
  { name: 'file', short: 'f', type: 'string', arg: 'Dockerfile', help: 'the Dockerfile (default CONTEXT/Dockerfile; - reads standard input)' },
  { name: 'format', type: 'string', arg: 'text|json|sarif', help: 'output format (default text); sarif for code-scanning tools' },
  helpFlag,
];

/** Prints the findings; exit 1 when there are any (as `docker build --check`), 0 when none. */
export function checkCommand(p: Parsed): number {
  if (p.positional.length > 1) throw new UsageError(`check takes at most one context directory, got ${p.positional.join(' ')}`);
  const format = flagStr(p, 'format') ?? 'text';
  if (!['text', 'json', 'sarif'].includes(format)) throw new UsageError(`--format ${format}: use text, json or sarif`);
  const fileFlag = flagStr(p, 'file');
  const context = p.positional[0] ?? (fileFlag && fileFlag !== '-' ? undefined : '.');
  const { result, file } = checkDockerfile({
    context: context ?? (fs.existsSync('.dockerignore') ? '.' : undefined),
    dockerfile: fileFlag === '-' ? undefined : fileFlag,
    dockerfileText: fileFlag === '-' ? fs.readFileSync(0, 'utf8') : undefined,
  });
  const shown = path.relative(process.cwd(), file) || file;
  if (format === 'json') process.stdout.write(`${JSON.stringify({ file: shown, error: result.error, skipped: result.skipped, findings: result.findings.map((f) => ({ ...f, why: CHECK_RULES[f.rule] ?? '' })) }, null, 2)}\n`);
  else if (format === 'sarif') process.stdout.write(formatChecksSarif(result, shown, VERSION));
  else process.stdout.write(formatChecks(result, shown));
  return result.findings.length > 0 ? 1 : 0;
}
