/**
 * The monitor of a detached container: a tsbuild process started by `run -d` (or `start`) in a session
 * of its own. It supervises the container (logs, exit status, restart policy, health check), reports
 * the first start to the command that launched it, and ends when the container ends for good. If it
 * is killed, its helper and the container die with it (PDEATHSIG) and the record, read by anyone,
 * says so. A SIGTERM to the monitor stops the container as `tsbuild stop` would.
 */
import net from 'node:net';
import type { Store } from '../store/index.js';
import { removeStopped } from './run.js';
import { supervise } from './supervise.js';
import { stopContainer } from './containers.js';

export interface MonitorReport {
  ok?: boolean;
  error?: string;
  code?: string;
  exitCode?: number;
}

/**
 * Runs until the container is done; `report` is called once, after the first start or its failure.
 * Attach clients connect to `attach.sock` in the container's directory: they receive the output and,
 * with -i, their input goes to the container.
 */
export async function monitorContainer(store: Store, id: string, report: (r: MonitorReport) => void): Promise<number> {
  const dir = store.containers.dirOf(id);
  const c = store.containers.get(id);
  if (!c) {
    report({ error: `no such container: ${id}`, code: 'CONTAINER_NOT_FOUND', exitCode: 125 });
    return 1;
  }
  const clients = new Set<net.Socket>();
  let stdin: NodeJS.WritableStream | undefined;
  // Unix socket paths are limited to 108 bytes: the monitor works from the container's directory.
  process.chdir(dir);
  const server = net.createServer((sock) => {
    clients.add(sock);
    sock.on('data', (d) => stdin?.write(d));
    sock.on('close', () => clients.delete(sock));
    sock.on('error', () => clients.delete(sock));
  });
  await new Promise<void>((resolve) => {
    server.once('error', () => resolve());
    server.listen('attach.sock', () => resolve());
  });
  server.unref();
  let stopping = false;
  const onTerm = () => {
    if (stopping) return;
    stopping = true;
    void stopContainer(store, id).catch(() => undefined);
  };
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onTerm);
  process.on('SIGHUP', () => undefined);
  let code = 125;
  try {
    code = await supervise(store, id, {
      stdin: c.config?.interactive ? 'pipe' : 'ignore',
      out: (_stream, chunk) => {
        for (const s of clients) s.write(chunk);
      },
      onStart: (info) => (stdin = info.stdin),
      onFirstStart: (err) =>
        report(err ? { error: (err as Error).message, code: (err as { code?: string }).code, exitCode: (err as { exitCode?: number }).exitCode ?? 125 } : { ok: true }),
    });
  } catch {
    // reported to the starter already, and recorded
  } finally {
    for (const s of clients) s.end();
    server.close();
    process.chdir('/');
    const cur = store.containers.get(id);
    if (cur?.config?.autoRemove) await removeStopped(store, id, { volumes: true });
  }
  return code;
}
