/** `tsbuild parse`: shows how tsbuild reads a Dockerfile (BuildKit's AST dump, or typed JSON). */
import fs from 'node:fs';
import { UsageError } from '../errors/index.js';
import { dumpAST, parseAST, parseDockerfile } from '../parser/index.js';
import { flagStr, type FlagSpec, type Parsed, helpFlag } from './args.js';

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
  if (format === 'buildkit') {
    process.stdout.write(dumpAST(parseAST(text)));
    return 0;
  }
  const df = parseDockerfile(text, file);
  const { ast: _ast, ...rest } = df;
  void _ast;
  process.stdout.write(JSON.stringify(rest, null, 2) + '\n');
  return 0;
}
