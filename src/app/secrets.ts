/**
 * Build secrets and ssh agents: `--secret` and `--ssh` values turned into what RUN --mount=type=secret
 * and type=ssh read. Secrets are never stored and never part of a cache key; for `--ssh ID=KEYFILE`
 * an ssh-agent is started for the build, as BuildKit does, and stopped after it.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors/index.js';
import type { BuildSecrets } from '../ops/index.js';

export type SecretsRequest = BuildSecrets & { keyFiles: Map<string, string> };

/** `--secret id=X,src=FILE`, `id=X,env=VAR`, `id=X` (env X, else file X); `--ssh default|ID=SOCKET`. */
export function parseSecrets(secretFlags: string[], sshFlags: string[]): SecretsRequest {
  const secrets = new Map<string, { file?: string; env?: string }>();
  for (const f of secretFlags) {
    const kv = new Map(f.split(',').map((x) => {
      const i = x.indexOf('=');
      return [i < 0 ? x : x.slice(0, i), i < 0 ? '' : x.slice(i + 1)] as [string, string];
    }));
    const id = kv.get('id');
    if (!id) throw new UsageError(`--secret ${f}: id= is required, e.g. --secret id=npmrc,src=$HOME/.npmrc`);
    for (const k of kv.keys()) if (!['id', 'src', 'source', 'env', 'type'].includes(k)) throw new UsageError(`--secret ${f}: unknown key ${k}`);
    const src = kv.get('src') ?? kv.get('source');
    const envName = kv.get('env');
    if (src !== undefined) {
      if (!fs.existsSync(src)) throw new UsageError(`--secret ${f}: ${src} does not exist`);
      secrets.set(id, { file: path.resolve(src) });
    } else if (envName !== undefined) secrets.set(id, { env: envName });
    else if (process.env[id] !== undefined) secrets.set(id, { env: id });
    else if (fs.existsSync(id)) secrets.set(id, { file: path.resolve(id) });
    else throw new UsageError(`--secret ${f}: give src=FILE or env=VAR`);
  }
  const ssh = new Map<string, string>();
  const keyFiles = new Map<string, string>();
  for (const f of sshFlags) {
    const i = f.indexOf('=');
    const id = i < 0 ? f : f.slice(0, i);
    let sock = i < 0 ? undefined : f.slice(i + 1);
    if (sock === undefined) {
      if (id !== 'default') throw new UsageError(`--ssh ${f}: use default or ID=SOCKET`);
      sock = process.env.SSH_AUTH_SOCK;
      if (!sock) throw new UsageError('--ssh default: SSH_AUTH_SOCK is not set; start ssh-agent or give --ssh default=SOCKET');
    }
    let st: fs.Stats;
    try {
      st = fs.statSync(sock);
    } catch {
      throw new UsageError(`--ssh ${f}: ${sock} does not exist`);
    }
    if (st.isSocket()) ssh.set(id, sock);
    else keyFiles.set(id, path.resolve(sock));
  }
  return { secrets, ssh, keyFiles };
}

/**
 * `--ssh ID=KEYFILE`: as BuildKit, an ssh-agent is started for the build with those keys loaded;
 * `stop` kills it. The key never leaves the agent.
 */
export async function startAgents(s: SecretsRequest, tmpRoot: string): Promise<() => void> {
  const stops: (() => void)[] = [];
  for (const [id, key] of s.keyFiles) {
    const dir = fs.mkdtempSync(path.join(tmpRoot, `agent-${process.pid}-`));
    const sock = path.join(dir, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
    const failed = await new Promise<string | undefined>((resolve) => {
      agent.once('error', (e) => resolve(`cannot start ssh-agent (${e.message}); install openssh-client or pass an agent socket`));
      const deadline = Date.now() + 5000;
      const poll = () => (fs.existsSync(sock) ? resolve(undefined) : Date.now() > deadline ? resolve('ssh-agent did not start') : setTimeout(poll, 20));
      poll();
    });
    const stop = () => {
      agent.kill('SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    };
    if (failed) {
      stop();
      throw new UsageError(`--ssh ${id}=${key}: ${failed}`);
    }
    const add = spawnSync('ssh-add', [key], { env: { ...process.env, SSH_AUTH_SOCK: sock }, encoding: 'utf8', input: '' });
    if (add.status !== 0) {
      stop();
      throw new UsageError(`--ssh ${id}=${key}: ssh-add could not load the key: ${(add.stderr || add.error?.message || '').trim()} (keys with a passphrase need an agent you unlock yourself)`);
    }
    s.ssh.set(id, sock);
    stops.push(stop);
  }
  return () => stops.forEach((f) => f());
}
