/**
 * The non-root entry (`bin/tsbuild.js` loads it, bundled on its own as dist/bundle/rootless.mjs):
 * straight into the user's namespace, where the full CLI runs. Loading only this half the bundle
 * saves the outer process a third of its start-up.
 */
import { runInUserNamespace } from '../app/index.js';
import { selfCommand } from './startup.js';

export async function rootlessMain(argv: string[]): Promise<number> {
  try {
    return await runInUserNamespace([...selfCommand(), ...argv], (m) => process.stderr.write(`WARNING: ${m}\n`));
  } catch (e) {
    process.stderr.write(`ERROR: ${(e as Error).message}\n`);
    return 1;
  }
}
