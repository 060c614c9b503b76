/**
 * parser: Dockerfile text → typed instructions, following BuildKit's parser rule for rule (its
 * conformance data passes): directives, line continuation, heredocs, per-instruction flags, and
 * shell-style word expansion; `.dockerignore` parsing and matching. Pure functions; the only error
 * thrown for bad input is DockerfileSyntaxError with a line range.
 *
 * Imports errors only.
 */
export { parseDockerfile, instructionFromNode } from './instructions.js';
export type { Dockerfile, Stage, Instruction } from './instructions.js';
export { parseAST, dumpAST, chompHeredocContent } from './ast.js';
export { processWord, processWords } from './shell.js';
export { parseDockerignore, IgnoreMatcher, DockerignoreError } from './dockerignore.js';
export { suggest } from './flags.js';
export { DockerfileSyntaxError } from '../errors/index.js';
