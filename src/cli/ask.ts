/** Questions on a terminal: a line the user types, and Docker's "Are you sure?" before a prune. */
import { UsageError } from '../errors/index.js';
import { flagBool, type Parsed } from './args.js';

/** One line from the terminal; with `hidden`, typed characters are not echoed (as Docker's password prompt). */
export function prompt(question: string, hidden: boolean, out: NodeJS.WriteStream = process.stderr): Promise<string> {
  return new Promise((resolve, reject) => {
    out.write(question);
    const stdin = process.stdin;
    let line = '';
    if (hidden) stdin.setRawMode(true);
    stdin.resume();
    const done = (err?: Error) => {
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      if (hidden) stdin.setRawMode(false);
      stdin.pause();
      if (hidden) out.write('\n');
      if (err) reject(err);
      else resolve(line);
    };
    const onData = (d: Buffer) => {
      for (const ch of d.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new UsageError('cancelled'));
        if (ch === '\u007f' || ch === '\b') line = line.slice(0, -1);
        else line += ch;
      }
    };
    const onEnd = () => done();
    stdin.on('data', onData);
    stdin.on('end', onEnd);
  });
}

/**
 * Docker asks before every prune unless -f; on a terminal, so does tsbuild, in Docker's words, and
 * only `y` or `yes` goes on. Without a terminal (scripts, CI) nobody could answer, and tsbuild does
 * not ask (docs/docker-parity.md).
 */
export async function confirmed(p: Parsed, warning: string): Promise<boolean> {
  if (flagBool(p, 'force') || !process.stdin.isTTY) return true;
  const answer = await prompt(`WARNING! ${warning}\nAre you sure you want to continue? [y/N] `, false, process.stdout);
  if (/^y(es)?$/i.test(answer.trim())) return true;
  process.stderr.write('cancelled: nothing was removed\n');
  return false;
}

/** The exit code of a prune the user declined: 1, nothing done. */
export const DECLINED = 1;
