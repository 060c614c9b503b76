/**
 * planner: a parsed Dockerfile + build args + target → a build graph of opspec vertices (BuildKit's
 * dispatcher). Pure but for the injected `resolveImage` (which may pull); throws PlanError and
 * DockerfileSyntaxError with the Dockerfile line. Also the build checks (`check`, BuildKit's lint
 * rules and good practice) as pure functions of a parsed Dockerfile.
 *
 * Imports parser, builder (vertices), opspec, image (config types); never ops, store or app.
 */
export { planBuild, namedContextKey } from './plan.js';
export { PlanError } from './types.js';
export type { PlanOptions, BuildGraph, ResolvedBase, PlanWarning, NamedContext } from './types.js';
export { parseDuration, signalNumber } from './config.js';
export { runChecks, formatText, formatSarif, checkDirective } from './check.js';
export type { CheckResult } from './check.js';
export { RULES, variableRefs } from './lint.js';
export type { Finding } from './lint.js';
