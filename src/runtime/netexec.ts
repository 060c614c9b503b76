/** How network setup runs `ip` and `nft`: one seam, so policy is unit-tested with a fake. */
import { execFile } from 'node:child_process';
import { TsbuildError } from '../errors/index.js';

/** Runs a tool; throws with its stderr. A seam for tests. */
export type Runner = (cmd: string, args: string[], input?: string) => Promise<string>;

export const run: Runner = (cmd, args, input) =>
  new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { encoding: 'utf8' }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        return reject(new TsbuildError('NETWORK_TOOLS', `container networks need ${cmd} (apt-get install -y iproute2 nftables), or run with --network host or none`));
      }
      reject(new TsbuildError('NETWORK_SETUP', `${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`));
    });
    if (input !== undefined) child.stdin!.end(input);
  });

