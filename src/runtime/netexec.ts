/** How network setup runs `ip` and `nft`: one seam, so policy is unit-tested with a fake. */
import { TsbuildError } from '../errors/index.js';
import { spawnChild } from './spawn.js';

/** Runs a tool; throws with its stderr. A seam for tests. */
export type Runner = (cmd: string, args: string[], input?: string) => Promise<string>;

// A container on a bridge runs about 20 of these: through spawnChild (posix_spawn), not a fork of Node each.
export const run: Runner = (cmd, args, input) =>
  new Promise((resolve, reject) => {
    const child = spawnChild(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') {
        return reject(new TsbuildError('NETWORK_TOOLS', `container networks need ${cmd} (apt-get install -y iproute2 nftables), or run with --network host or none`));
      }
      reject(new TsbuildError('NETWORK_SETUP', `${cmd} ${args.join(' ')}: ${err.message}`));
    });
    child.on('close', (code: number | null, signal: NodeJS.Signals | null) => {
      if (code === 0) return resolve(stdout);
      reject(new TsbuildError('NETWORK_SETUP', `${cmd} ${args.join(' ')}: ${stderr.trim() || (signal ? `killed by ${signal}` : `exit status ${code}`)}`));
    });
    // A tool that exits before reading its input (a bad argument) must not fail the write.
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(input ?? '');
  });
