export { planBuild, PlanError, hostPlatform } from './plan.js';
export type { PlanOptions, BuildGraph, ResolvedBase, PlanWarning } from './plan.js';
export { parseDuration, signalNumber, DEFAULT_PATH } from './config.js';
