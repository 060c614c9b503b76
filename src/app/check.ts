/**
 * `tsbuild check` and `build --check`: the build checks (planner/lint.ts) on a Dockerfile and, when
 * there is a context directory, its .dockerignore (CopyIgnoredFile) and size (LargeContextWithoutIgnore).
 * Also run at the start of every build, whose findings become warnings (or, with `# check=error=true`,
 * stop it).
 */
import fs from 'node:fs';
import path from 'node:path';
import { TsbuildError } from '../errors/index.js';
import { walkFiles } from '../fsutil/index.js';
import { IgnoreMatcher, type Dockerfile } from '../parser/index.js';
import { runChecks, type CheckResult } from '../planner/index.js';
import { contextDir, parseFile, readDockerfile, readIgnore } from './build.js';

/** Counts context files, stopping at `cap` (only "is it large" matters). */
function countFiles(dir: string, cap = 5001): number {
  let n = 0;
  walkFiles(dir, () => ++n < cap);
  return n;
}

export function checksFor(df: Dockerfile, text: string, context: string | undefined, ignore: string[]): CheckResult {
  const m = ignore.length ? new IgnoreMatcher(ignore) : undefined;
  return runChecks({
    df, text,
    ...(context ? { ignored: (p: string) => m?.matches(p) ?? false, contextFiles: countFiles(context), hasDockerignore: ignore.length > 0 || fs.existsSync(path.join(context, '.dockerignore')) } : {}),
  });
}

export interface CheckRequest {
  context?: string;
  dockerfile?: string;
  dockerfileText?: string;
}

export function checkDockerfile(req: CheckRequest): { result: CheckResult; file: string } {
  const context = req.context !== undefined ? contextDir(req.context) : undefined;
  const file = path.resolve(req.dockerfile ?? path.join(context ?? '.', 'Dockerfile'));
  const text = req.dockerfileText ?? readDockerfile(file);
  const df = parseFile(text, file);
  return { result: checksFor(df, text, context, context ? readIgnore(file, context) : []), file };
}

/** `# check=error=true` with findings: the build stops before it starts. */
export function enforceChecks(r: CheckResult, file: string): void {
  if (!r.error || r.findings.length === 0) return;
  const list = r.findings.map((f) => `${path.basename(file)}:${f.line} ${f.rule}: ${f.message}`).join('\n  ');
  throw new TsbuildError('CHECK_FAILED', `${r.findings.length} build check${r.findings.length === 1 ? '' : 's'} failed and the Dockerfile says # check=error=true:\n  ${list}\nfix them, or skip a rule with # check=skip=RULE`);
}
