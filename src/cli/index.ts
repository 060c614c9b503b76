/**
 * cli: the command line. argv → typed requests → app; progress and results rendered; errors mapped
 * to exit codes. The only code that prints.
 *
 * Imports app and errors only.
 */
export { main } from './main.js';
