/**
 * A user-mode network (`--network slirp4netns`, the rootless default where slirp4netns is installed):
 * a network namespace held by the helper, served by slirp4netns (10.0.2.0/24: the container is
 * 10.0.2.100, the host 10.0.2.2, DNS 10.0.2.3), ports published through its API socket. No root on
 * the host is needed. Both processes end with the tsbuild process that made them: the holder by
 * PDEATHSIG, slirp4netns when its exit pipe (our end) closes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { TsbuildError } from '../errors/index.js';
import { helperPath } from './helper.js';
import { onPath } from './userns.js';
import type { PortBinding } from './network.js';

export const SLIRP = { ip: '10.0.2.100', gateway: '10.0.2.2', dns: '10.0.2.3' };

export interface UserModeNetwork {
  /** The namespace the container joins. */
  path: string;
  ports: PortBinding[];
  stop(): void;
}

export function slirpAvailable(): boolean {
  return onPath('slirp4netns');
}

function waitFor(child: ChildProcess, stream: NodeJS.ReadableStream, what: string, errText: () => string): Promise<void> {
  return new Promise((resolve, reject) => {
    // The first byte is the signal: the holder writes "ready", slirp4netns "1" on its ready fd.
    const onData = () => {
      stream.off('data', onData);
      child.off('close', onClose);
      resolve();
    };
    const onClose = () => reject(new TsbuildError('USERNET', `${what} exited before it was ready: ${errText().trim() || 'no message'}`));
    stream.on('data', onData);
    child.once('close', onClose);
    child.once('error', (e) => reject(new TsbuildError('USERNET', `cannot start ${what}: ${e.message}${what === 'slirp4netns' ? ' (Debian: apt-get install slirp4netns)' : ''}`)));
  });
}

/** One request on slirp4netns's API socket (one connection per request, as its API wants). */
function api(sock: string, request: object): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const c = net.connect(sock);
    let text = '';
    c.on('connect', () => c.end(JSON.stringify(request)));
    c.on('data', (d) => (text += d.toString('utf8')));
    c.on('error', reject);
    c.on('close', () => {
      try {
        resolve(JSON.parse(text) as Record<string, unknown>);
      } catch {
        reject(new TsbuildError('USERNET', `slirp4netns answered ${JSON.stringify(text)} to ${JSON.stringify(request)}`));
      }
    });
  });
}

/** A free port on the host, for `-p 80` (host port 0), as the bridge's publisher picks one. */
function freeHostPort(proto: string, hostIp: string): Promise<number> {
  if (proto === 'udp') {
    return import('node:dgram').then(
      (dgram) =>
        new Promise((resolve, reject) => {
          const s = dgram.createSocket('udp4');
          s.on('error', reject);
          s.bind(0, hostIp || '0.0.0.0', () => {
            const p = s.address().port;
            s.close(() => resolve(p));
          });
        }),
    );
  }
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, hostIp || '0.0.0.0', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

export async function startUserModeNetwork(o: { ports: PortBinding[]; allowHostLoopback?: boolean }): Promise<UserModeNetwork> {
  const holder = spawn(helperPath(), ['netns'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let holderErr = '';
  holder.stderr!.on('data', (d: Buffer) => (holderErr += d.toString('utf8')));
  let slirp: ChildProcess | undefined;
  // A socket path must fit in 108 bytes: a short private directory, not the container's.
  const sockDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsb-net-'));
  const sock = path.join(sockDir, 'api.sock');
  const stop = () => {
    slirp?.kill('SIGTERM');
    for (const s of slirp?.stdio ?? []) s?.destroy();
    holder.kill('SIGKILL');
    fs.rmSync(sockDir, { recursive: true, force: true });
  };
  try {
    await waitFor(holder, holder.stdout!, 'the network namespace holder', () => holderErr);
    const args = ['--configure', '--mtu=65520', `--api-socket=${sock}`, '--exit-fd=3', '--ready-fd=4', ...(o.allowHostLoopback ? [] : ['--disable-host-loopback']), String(holder.pid), 'tap0'];
    const child = spawn('slirp4netns', args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
    slirp = child;
    let slirpErr = '';
    child.stderr!.on('data', (d: Buffer) => (slirpErr += d.toString('utf8')));
    await waitFor(child, child.stdio[4] as NodeJS.ReadableStream, 'slirp4netns', () => slirpErr);
    const ports: PortBinding[] = [];
    for (const p of o.ports) {
      const hostPort = p.hostPort || (await freeHostPort(p.proto, p.hostIp));
      const r = await api(sock, { execute: 'add_hostfwd', arguments: { proto: p.proto, host_addr: p.hostIp || '0.0.0.0', host_port: hostPort, guest_addr: SLIRP.ip, guest_port: p.containerPort } });
      if (r.error) {
        throw new TsbuildError('PORT_IN_USE', `-p ${p.hostIp ? `${p.hostIp}:` : ''}${hostPort}:${p.containerPort}/${p.proto}: slirp4netns cannot listen there (${JSON.stringify(r.error)}); is the port in use? pick another host port`);
      }
      ports.push({ ...p, hostIp: p.hostIp || '0.0.0.0', hostPort });
    }
    // Node must not wait for these: they live exactly as long as this process needs them.
    holder.unref();
    child.unref();
    for (const s of [holder.stdout, holder.stderr, child.stderr, child.stdio[3], child.stdio[4]]) (s as { unref?: () => void } | null)?.unref?.();
    return { path: `/proc/${holder.pid}/ns/net`, ports, stop };
  } catch (e) {
    stop();
    throw e;
  }
}
