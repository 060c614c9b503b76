/** `parse`: how tsbuild reads a Dockerfile, as BuildKit's AST dump or as typed JSON. */
import { dumpAST, parseAST, parseDockerfile } from '../parser/index.js';

export function describeDockerfile(text: string, file: string, format: 'buildkit' | 'json'): string {
  if (format === 'buildkit') return dumpAST(parseAST(text));
  const { ast: _ast, ...rest } = parseDockerfile(text, file);
  void _ast;
  return JSON.stringify(rest, null, 2) + '\n';
}
