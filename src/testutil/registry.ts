/**
 * Real registries for tests: Debian's docker-registry (the CNCF distribution registry) on 127.0.0.1
 * with a throwaway store, optionally behind htpasswd Basic auth or token auth with a small in-process
 * token issuer (throwaway RSA key and certificate), and a fault-injecting proxy. Everything started
 * here is stopped by its `stop()`; tests call it in `finally`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { tmpdir } from './index.js';

export function registryUnavailable(): string | undefined {
  if (spawnSync('sh', ['-c', 'command -v docker-registry'], { encoding: 'utf8' }).status !== 0) return 'docker-registry is not installed (apt-get install -y docker-registry)';
  return undefined;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface TestRegistry {
  host: string;
  dir: string;
  stop(): Promise<void>;
}

async function waitUp(url: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`registry exited: ${log()}`);
    try {
      const r = await fetch(url);
      await r.body?.cancel();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`registry did not come up: ${log()}`);
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 3000).unref();
  });
}

export type RegistryAuth = { htpasswd: Record<string, string> } | { token: TokenIssuer };

export interface TestCA {
  /** The authority's certificate (what a client trusts). */
  ca: string;
  /** A server certificate for 127.0.0.1 (and localhost) signed by it, and its key. */
  cert: string;
  key: string;
}

/** A throwaway certificate authority and a server certificate for 127.0.0.1, in `dir` (made with openssl). */
export function makeTestCA(dir: string): TestCA {
  const f = (n: string) => path.join(dir, n);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  fs.writeFileSync(f('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  for (const args of [
    ['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=tsbuild-test-ca'],
    ['req', ...ec, '-keyout', f('key.pem'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1'],
    ['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('cert.pem'), '-days', '2', '-extfile', f('san.ext')],
  ]) {
    const r = spawnSync('openssl', args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args[0]} failed (apt-get install -y openssl): ${r.stderr}`);
  }
  return { ca: f('ca.pem'), cert: f('cert.pem'), key: f('key.pem') };
}

/** `tls`: serve HTTPS with this certificate instead of plain HTTP. */
export async function startRegistry(auth?: RegistryAuth, o: { tls?: TestCA } = {}): Promise<TestRegistry> {
  const dir = tmpdir('tsb-registry-');
  const port = await freePort();
  let authYaml = '';
  if (auth && 'htpasswd' in auth) {
    const lines = Object.entries(auth.htpasswd).map(([u, pw]) => {
      const r = spawnSync('htpasswd', ['-Bbn', u, pw], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`htpasswd failed (apt-get install -y apache2-utils): ${r.stderr}`);
      return r.stdout.trim();
    });
    fs.writeFileSync(path.join(dir, 'htpasswd'), lines.join('\n') + '\n');
    authYaml = `auth:\n  htpasswd:\n    realm: tsbuild-test\n    path: ${path.join(dir, 'htpasswd')}\n`;
  } else if (auth && 'token' in auth) {
    const t = auth.token;
    authYaml = `auth:\n  token:\n    realm: ${t.realm}\n    service: ${t.service}\n    issuer: ${t.issuer}\n    rootcertbundle: ${t.certFile}\n`;
  }
  const config = `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${path.join(dir, 'data')}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n${o.tls ? `  tls:\n    certificate: ${o.tls.cert}\n    key: ${o.tls.key}\n` : ''}${authYaml}`;
  fs.writeFileSync(path.join(dir, 'config.yml'), config);
  const child = spawn('docker-registry', ['serve', path.join(dir, 'config.yml')], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OTEL_TRACES_EXPORTER: 'none' } });
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  child.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  try {
    // Over TLS the registry answers a plain request with 400, which says it is up as well.
    await waitUp(`http://127.0.0.1:${port}/v2/`, child, () => log);
  } catch (e) {
    await stopChild(child);
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    host: `127.0.0.1:${port}`,
    dir,
    async stop() {
      await stopChild(child);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url');
}

/** libtrust's key id: base32 of the first 30 bytes of sha256(DER public key), in groups of four. */
function libtrustKeyID(publicKeyPem: string): string {
  const der = crypto.createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' });
  const sum = crypto.createHash('sha256').update(der).digest().subarray(0, 30);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of sum) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out.match(/.{4}/g)!.join(':');
}

export interface TokenRequest {
  user?: string;
  scopes: string[];
  service?: string;
}

export interface TokenIssuer {
  realm: string;
  service: string;
  issuer: string;
  certFile: string;
  requests: TokenRequest[];
  stop(): Promise<void>;
}

/** A token server as Docker Hub runs one: Basic credentials in, a signed JWT with granted scopes out. */
export async function startTokenIssuer(users: Record<string, string>, o: { ttlSeconds?: number; anonymousPull?: boolean } = {}): Promise<TokenIssuer> {
  const dir = tmpdir('tsb-token-');
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=tsbuild-test-issuer'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`);
  const privateKey = fs.readFileSync(key, 'utf8');
  const kid = libtrustKeyID(crypto.createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString());
  const service = 'tsbuild-test-registry';
  const issuer = 'tsbuild-test-issuer';
  const requests: TokenRequest[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
    let user: string | undefined;
    const h = req.headers.authorization;
    if (h?.startsWith('Basic ')) {
      const [u, ...rest] = Buffer.from(h.slice(6), 'base64').toString().split(':');
      if (users[u!] === undefined || users[u!] !== rest.join(':')) {
        res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ details: 'bad credentials' }));
        return;
      }
      user = u;
    }
    requests.push({ user, scopes, service: url.searchParams.get('service') ?? undefined });
    const access = scopes.map((s) => {
      const [type, ...mid] = s.split(':');
      const actions = mid.pop()!.split(',');
      const granted = user ? actions : o.anonymousPull ? actions.filter((a) => a === 'pull') : [];
      return { type, name: mid.join(':'), actions: granted };
    });
    const now = Math.floor(Date.now() / 1000);
    const ttl = o.ttlSeconds ?? 300;
    const header = { alg: 'RS256', typ: 'JWT', kid };
    const claims = { iss: issuer, sub: user ?? '', aud: service, exp: now + ttl, nbf: now - 10, iat: now, jti: crypto.randomBytes(8).toString('hex'), access };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = crypto.sign('RSA-SHA256', Buffer.from(input), privateKey);
    const token = `${input}.${b64url(sig)}`;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, access_token: token, expires_in: ttl, issued_at: new Date(now * 1000).toISOString() }));
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certFile: cert,
    requests,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `restart-ignoring-range`: the first request is cut mid-blob, a resumed one (with Range) gets the whole blob again. */
export type Fault = 'none' | 'reset-mid-blob' | 'error-500' | 'wrong-byte' | 'slow' | 'restart-ignoring-range';

export interface FaultProxy {
  host: string;
  /** What the next matching requests get; `times` of them, then none. */
  inject(f: Fault, o?: { times?: number; match?: RegExp; method?: string; delayMs?: number }): void;
  hits: number;
  stop(): Promise<void>;
}

/** An HTTP proxy in front of a registry that breaks things on purpose. */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  let fault: Fault = 'none';
  let left = 0;
  let match = /\/blobs\/sha256:/;
  let method = 'GET';
  let delayMs = 20;
  const state = { hits: 0 };
  const server = http.createServer((req, res) => {
    const active = fault !== 'none' && left > 0 && match.test(req.url ?? '') && req.method === method;
    let f = active ? fault : 'none';
    if (f === 'restart-ignoring-range') {
      if (req.headers.range) {
        delete req.headers.range;
        f = 'none';
      } else f = 'reset-mid-blob';
    }
    if (active) {
      left--;
      state.hits++;
    }
    if (f === 'error-500') {
      req.resume();
      res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'UNKNOWN', message: 'injected failure' }] }));
      return;
    }
    const up = http.request({ host: target.split(':')[0], port: Number(target.split(':')[1]), method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      if (f === 'none') {
        ur.pipe(res);
        return;
      }
      let sent = 0;
      const total = Number(ur.headers['content-length'] ?? 0);
      ur.on('data', (c: Buffer) => {
        if (f === 'reset-mid-blob' && sent + c.length >= total / 2) {
          const keep = Math.max(0, Math.floor(total / 2) - sent);
          sent += keep;
          ur.destroy();
          // Flushed first, so the client really holds a prefix when the connection drops.
          res.write(c.subarray(0, keep), () => res.socket?.destroy());
          return;
        }
        if (f === 'wrong-byte' && sent <= total / 2 && sent + c.length > total / 2) {
          const copy = Buffer.from(c);
          const i = Math.floor(total / 2) - sent;
          copy[i] = copy[i]! ^ 0xff;
          c = copy;
        }
        sent += c.length;
        if (f === 'slow') {
          ur.pause();
          res.write(c);
          setTimeout(() => ur.resume(), delayMs);
        } else res.write(c);
      });
      ur.on('end', () => res.end());
      ur.on('error', () => res.socket?.destroy());
    });
    up.on('error', () => res.socket?.destroy());
    req.pipe(up);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${port}`,
    inject(f, o = {}) {
      fault = f;
      left = o.times ?? 1;
      match = o.match ?? /\/blobs\/sha256:/;
      method = o.method ?? 'GET';
      delayMs = o.delayMs ?? 20;
    },
    get hits() {
      return state.hits;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
