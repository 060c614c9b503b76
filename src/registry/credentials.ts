/**
 * Credential sources, read the way Docker reads them: `$DOCKER_CONFIG/config.json` (default
 * `~/.docker/config.json`) holds `auths` (base64 `user:password`, or an identity token), `credHelpers`
 * (a `docker-credential-<name>` program per registry) and `credsStore` (one program for all). A lookup
 * asks the per-registry helper first, then `auths`, then the store, as the Docker CLI does.
 * `login` stores through the configured store when there is one, otherwise in `auths` (mode 0600).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TsbuildError } from '../errors/index.js';
import { readJSONFile, userEnv, writeFileAtomic } from '../fsutil/index.js';
import { credentialKey } from './reference.js';

export interface Credentials {
  username: string;
  password: string;
  /** An OAuth2 refresh token (Docker's `identitytoken`), used instead of the password for tokens. */
  identityToken?: string;
}

/** One place credentials can live. Every source passes the same suite (credentials.test.ts). */
export interface CredentialSource {
  readonly name: string;
  get(domain: string): Promise<Credentials | undefined>;
  store(domain: string, c: Credentials): Promise<void>;
  erase(domain: string): Promise<boolean>;
}

export class CredentialError extends TsbuildError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CREDENTIALS', message, options);
  }
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}
export interface DockerConfig {
  auths?: Record<string, AuthEntry>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
  [k: string]: unknown;
}

export function dockerConfigDir(): string {
  return process.env.DOCKER_CONFIG || path.join(process.env.HOME || os.homedir(), '.docker');
}

function configFile(dir: string): string {
  return path.join(dir, 'config.json');
}

export function readDockerConfig(dir = dockerConfigDir()): DockerConfig {
  const file = configFile(dir);
  try {
    return readJSONFile<DockerConfig>(file, {});
  } catch (e) {
    throw new CredentialError(`cannot read ${file}: ${(e as Error).message}; fix or remove the file`, { cause: e });
  }
}

/** `https://index.docker.io/v1/`, `http://host:5000`, `host:5000/v2/` all name the same registry. */
function hostOf(key: string): string {
  return key.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
}

/** `auths` in config.json. */
export class ConfigFileSource implements CredentialSource {
  readonly name = 'config.json';
  constructor(private dir = dockerConfigDir()) {}
  private find(cfg: DockerConfig, domain: string): string | undefined {
    const key = credentialKey(domain);
    const auths = cfg.auths ?? {};
    if (auths[key]) return key;
    const want = hostOf(key);
    return Object.keys(auths).find((k) => hostOf(k) === want || (want === 'index.docker.io' && hostOf(k) === 'docker.io'));
  }
  async get(domain: string): Promise<Credentials | undefined> {
    const cfg = readDockerConfig(this.dir);
    const k = this.find(cfg, domain);
    const e = k ? cfg.auths![k]! : undefined;
    if (!e) return undefined;
    let username = e.username ?? '';
    let password = e.password ?? '';
    if (e.auth) {
      const text = Buffer.from(e.auth, 'base64').toString('utf8');
      const i = text.indexOf(':');
      if (i < 0) throw new CredentialError(`the "auth" entry for ${k} in ${configFile(this.dir)} is not base64 of user:password; run tsbuild login ${domain} again`);
      username = text.slice(0, i);
      password = text.slice(i + 1);
    }
    if (e.identitytoken) return { username, password, identityToken: e.identitytoken };
    return username || password ? { username, password } : undefined;
  }
  async store(domain: string, c: Credentials): Promise<void> {
    const cfg = readDockerConfig(this.dir);
    const auths = { ...(cfg.auths ?? {}) };
    const old = this.find(cfg, domain);
    if (old) delete auths[old];
    auths[credentialKey(domain)] = c.identityToken
      ? { auth: Buffer.from(`${c.username}:`).toString('base64'), identitytoken: c.identityToken }
      : { auth: Buffer.from(`${c.username}:${c.password}`).toString('base64') };
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeFileAtomic(configFile(this.dir), JSON.stringify({ ...cfg, auths }, null, '\t') + '\n');
    fs.chmodSync(configFile(this.dir), 0o600);
  }
  async erase(domain: string): Promise<boolean> {
    const cfg = readDockerConfig(this.dir);
    const k = this.find(cfg, domain);
    if (!k) return false;
    const auths = { ...(cfg.auths ?? {}) };
    delete auths[k];
    writeFileAtomic(configFile(this.dir), JSON.stringify({ ...cfg, auths }, null, '\t') + '\n');
    return true;
  }
}

/** A `docker-credential-<name>` program, speaking the credential-helper protocol on stdin/stdout. */
export class HelperSource implements CredentialSource {
  readonly name: string;
  constructor(helper: string) {
    this.name = `docker-credential-${helper}`;
  }
  private run(verb: 'get' | 'store' | 'erase', input: string): Promise<{ code: number; out: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.name, [verb], { stdio: ['pipe', 'pipe', 'pipe'], env: userEnv() });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.on('error', (e) => reject(new CredentialError(`credential helper ${this.name} cannot run (${e.message}): install it or remove it from ${configFile(dockerConfigDir())}`, { cause: e })));
      child.on('close', (code) => resolve({ code: code ?? 1, out }));
      child.stdin.on('error', () => undefined);
      child.stdin.end(input);
    });
  }
  async get(domain: string): Promise<Credentials | undefined> {
    const r = await this.run('get', credentialKey(domain));
    if (r.code !== 0) {
      if (/credentials not found/i.test(r.out)) return undefined;
      throw new CredentialError(`credential helper ${this.name} failed for ${domain}: ${r.out.trim() || `exit ${r.code}`}`);
    }
    let j: { Username?: string; Secret?: string };
    try {
      j = JSON.parse(r.out) as { Username?: string; Secret?: string };
    } catch {
      throw new CredentialError(`credential helper ${this.name} printed something that is not JSON for ${domain}`);
    }
    if (j.Username === '<token>') return { username: '', password: '', identityToken: j.Secret ?? '' };
    return { username: j.Username ?? '', password: j.Secret ?? '' };
  }
  async store(domain: string, c: Credentials): Promise<void> {
    const body = JSON.stringify({ ServerURL: credentialKey(domain), Username: c.identityToken ? '<token>' : c.username, Secret: c.identityToken ?? c.password });
    const r = await this.run('store', body);
    if (r.code !== 0) throw new CredentialError(`credential helper ${this.name} could not store credentials for ${domain}: ${r.out.trim()}`);
  }
  async erase(domain: string): Promise<boolean> {
    const r = await this.run('erase', credentialKey(domain));
    if (r.code !== 0) {
      if (/credentials not found/i.test(r.out)) return false;
      throw new CredentialError(`credential helper ${this.name} could not erase credentials for ${domain}: ${r.out.trim()}`);
    }
    return true;
  }
}

/** The source Docker would use for `domain`: its credHelper, else the credsStore, else config.json. */
export function sourceFor(domain: string, dir = dockerConfigDir()): CredentialSource {
  const cfg = readDockerConfig(dir);
  const helper = cfg.credHelpers?.[credentialKey(domain)] ?? cfg.credHelpers?.[domain];
  if (helper) return new HelperSource(helper);
  if (cfg.credsStore) return new HelperSource(cfg.credsStore);
  return new ConfigFileSource(dir);
}

/** Looks up credentials for `domain`: helper, then `auths`, then the store (anonymous when none). */
export async function lookupCredentials(domain: string, dir = dockerConfigDir()): Promise<Credentials | undefined> {
  const cfg = readDockerConfig(dir);
  const helper = cfg.credHelpers?.[credentialKey(domain)] ?? cfg.credHelpers?.[domain];
  if (helper) return new HelperSource(helper).get(domain);
  const fromFile = await new ConfigFileSource(dir).get(domain);
  if (fromFile) return fromFile;
  if (cfg.credsStore) return new HelperSource(cfg.credsStore).get(domain);
  return undefined;
}
