/** `attach`: a detached container's output (and input) through its monitor's socket, with Docker's detach keys. */
import net from 'node:net';
import { TsbuildError, UsageError } from '../errors/index.js';
import type { Store } from '../store/index.js';
import { isActive } from './containers.js';

/** Docker's default detach keys, ctrl-p ctrl-q. */
export const DEFAULT_DETACH_KEYS = Buffer.from([0x10, 0x11]);

/** `--detach-keys`: Docker's syntax, comma-separated `ctrl-<letter>` (and `ctrl-@ [ \\ ] ^ _`) or single characters. */
export function parseDetachKeys(v: string): Buffer {
  const out: number[] = [];
  for (const k of v.split(',')) {
    const m = /^ctrl-(.)$/i.exec(k);
    if (m) {
      const c = m[1]!.toLowerCase();
      const code = c >= 'a' && c <= 'z' ? c.charCodeAt(0) - 96 : '@[\\]^_'.indexOf(c) >= 0 ? '@[\\]^_'.indexOf(c) + (c === '@' ? 0 : 26) : -1;
      if (code < 0) throw new UsageError(`--detach-keys ${v}: "${k}" is not a key; use ctrl-<letter>, ctrl-@, ctrl-[, ctrl-\\, ctrl-], ctrl-^, ctrl-_ or a single character`);
      out.push(code);
    } else if (k.length === 1) out.push(k.charCodeAt(0));
    else throw new UsageError(`--detach-keys ${v}: "${k}" is not a key; use e.g. ctrl-p,ctrl-q`);
  }
  return Buffer.from(out);
}

/**
 * `attach`: the running container's output from now on, and with `stdin` its input, through the
 * monitor's socket. Ends when the container ends (its exit code), when the caller aborts, or when
 * the detach keys are typed (0; the container keeps running).
 */
export async function attachContainer(store: Store, ref: string, io: { stdin?: NodeJS.ReadableStream; stdout: NodeJS.WritableStream; signal?: AbortSignal; detachKeys?: Buffer }): Promise<number> {
  const c = store.containers.find(ref);
  if (!isActive(c) || !c.detached) throw new TsbuildError('CONTAINER_NOT_RUNNING', `You cannot attach to a stopped container, start it first (container ${c.id})`);
  const dir = store.containers.dirOf(c.id);
  const back = process.cwd();
  // The socket's full path may pass the 108-byte limit of unix sockets: connect relative to its directory.
  process.chdir(dir);
  const sock = net.connect('attach.sock');
  process.chdir(back);
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', (e) => reject(new TsbuildError('ATTACH_FAILED', `cannot attach to container ${ref}: ${e.message}`)));
  });
  const keys = io.detachKeys ?? DEFAULT_DETACH_KEYS;
  let matched = 0;
  let detached = false;
  const onInput = (d: Buffer) => {
    // Input goes through until the whole detach sequence is typed; a broken partial match is sent.
    const out: number[] = [];
    for (const byte of d) {
      if (keys.length && byte === keys[matched]) {
        if (++matched < keys.length) continue;
        if (out.length) sock.write(Buffer.from(out));
        detached = true;
        sock.destroy();
        return;
      }
      if (matched) {
        out.push(...keys.subarray(0, matched));
        matched = byte === keys[0] ? 1 : 0;
        if (matched) continue;
      }
      out.push(byte);
    }
    if (out.length) sock.write(Buffer.from(out));
  };
  const onEnd = () => sock.end();
  io.stdin?.on('data', onInput);
  io.stdin?.once('end', onEnd);
  sock.pipe(io.stdout, { end: false });
  sock.on('error', () => undefined);
  await new Promise<void>((resolve) => {
    sock.once('close', () => resolve());
    io.signal?.addEventListener('abort', () => sock.destroy(), { once: true });
  });
  io.stdin?.off('data', onInput);
  io.stdin?.off('end', onEnd);
  if (detached) return 0;
  return store.containers.get(c.id)?.exitCode ?? 0;
}
