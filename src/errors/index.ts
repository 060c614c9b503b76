/**
 * errors: one error base for all of tsbuild, imported by every module and importing none.
 *
 * Every error has a stable `code` (used by the CLI to pick an exit
 * code and by tests to assert on), a message that says what failed, where, and what to do, and the
 * standard `cause`. Each layer adds one piece of context by wrapping, never by string-munging.
 */
export class TsbuildError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A Dockerfile that cannot be read. Lines are 1-based and inclusive, as BuildKit reports them. */
export class DockerfileSyntaxError extends TsbuildError {
  readonly startLine: number;
  readonly endLine: number;
  file: string | undefined;
  constructor(message: string, startLine: number, endLine = startLine, file?: string) {
    super('DOCKERFILE_SYNTAX', message);
    this.startLine = startLine;
    this.endLine = endLine;
    this.file = file;
  }
  /** Message with the place, e.g. `Dockerfile:3: unknown flag: nope`. */
  located(): string {
    const where = this.file ?? 'Dockerfile';
    if (this.startLine <= 0) return `${where}: ${this.message}`;
    const lines = this.endLine > this.startLine ? `${this.startLine}-${this.endLine}` : `${this.startLine}`;
    return `${where}:${lines}: ${this.message}`;
  }
}

/** Bad command-line usage: a flag, a missing argument. */
export class UsageError extends TsbuildError {
  constructor(message: string) {
    super('USAGE', message);
  }
}

/** Something named by the user does not exist (image, stage, container). */
export class NotFoundError extends TsbuildError {
  constructor(message: string, code = 'NOT_FOUND') {
    super(code, message);
  }
}

/** The operation was cancelled (Ctrl-C, SIGTERM, a failing sibling). */
export class CancelledError extends TsbuildError {
  constructor(message = 'cancelled') {
    super('CANCELLED', message);
  }
}

/** Node's errno errors carry `code`; this narrows them without `any`. */
export function errnoCode(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && 'code' in e) {
    const c = (e as { code: unknown }).code;
    return typeof c === 'string' ? c : undefined;
  }
  return undefined;
}
