/** What app operations report while they run, and the options every operation takes. */
import type { SolverEvent } from '../builder/index.js';

export type AppEvent =
  /** A progress line: a pull, a push, a cache transfer, a retry. */
  | { type: 'log'; line: string }
  /** Something the user should know that does not stop the operation (an unused build arg). */
  | { type: 'warning'; message: string; line?: number }
  /** A build step's progress, straight from the solver. */
  | { type: 'solver'; event: SolverEvent }
  /** The build's steps are done (successfully or not); what follows is exporting. */
  | { type: 'solved' };

export interface OpOptions {
  signal?: AbortSignal;
  onEvent?: (e: AppEvent) => void;
}

export function logger(o: OpOptions): (line: string) => void {
  return (line) => o.onEvent?.({ type: 'log', line });
}
