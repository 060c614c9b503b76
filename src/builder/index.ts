/**
 * builder: the generic solver. `createSolver({ opFor, concurrency, onEvent }).solve(root, { signal })`
 * runs a DAG of vertices once each (deduplicated by vertex digest), inputs before dependents, at most
 * `concurrency` at a time; each op may bring a cache handle (key, load, run, save, explain). The first
 * failure cancels the rest. Knows nothing of Dockerfiles, files or images.
 *
 * Imports only errors.
 */
export { createSolver, vertex, VertexError } from './solver.js';
export type { Vertex, SolverEvent, OpContext, OpFn, OpHandle, CacheKey } from './solver.js';
