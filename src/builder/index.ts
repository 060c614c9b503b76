export { createSolver, vertex, VertexError } from './solver.js';
export type { Vertex, Solver, SolverEvent, SolverOptions, SolveOptions, OpContext, OpFn, OpHandle, CacheKey } from './solver.js';
