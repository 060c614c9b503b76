/**
 * The HTTP transport, built from middleware around one ky call (no ky retries, no automatic redirects):
 *
 *   auth (challenge → Basic or Bearer token, reuse, refresh) → retry (5xx, 429, resets; backoff)
 *     → redirects (followed by hand; Authorization dropped when the host changes) → ky
 *
 * A request carries the token scopes it needs and a body *factory*, so a retry or a re-send after an
 * auth challenge builds a fresh body instead of replaying a consumed stream.
 */
import { Readable } from 'node:stream';
import { CancelledError } from '../errors/index.js';
import { applyDeferredTrust } from '../fsutil/index.js';
import type { Credentials } from './credentials.js';
import { RegistryError, redactURL } from './httperror.js';
import { streamingRequest } from './nodehttp.js';

export { RegistryError, redactURL } from './httperror.js';
export { nodeBody } from './nodehttp.js';

export interface RegistryRequest {
  method: string;
  url: string;
  /** Lowercase header names. */
  headers: Record<string, string>;
  /** A factory, so a retry sends a fresh body; a Node stream is a streamed upload (a blob). */
  body?: () => BodyInit | Readable | undefined;
  /** Token scopes, e.g. `repository:library/alpine:pull`. */
  scopes: string[];
  signal?: AbortSignal;
  /** The response body is wanted as a Node stream (a blob download): see `nodeBody`. */
  streamResponse?: boolean;
}
export type Handler = (r: RegistryRequest) => Promise<Response>;
export type Middleware = (r: RegistryRequest, next: Handler) => Promise<Response>;

export function chain(middleware: Middleware[], last: Handler): Handler {
  return middleware.reduceRight<Handler>((next, mw) => (r) => mw(r, next), last);
}

/**
 * The bottom of the chain: one HTTP exchange. Headers time out; bodies are watched by their readers.
 * A streamed request body (a blob upload) goes through node:http, not fetch: Node 20's fetch
 * (undici 6) kept every chunk of a streamed request body until the request ended (607 MB of RSS to
 * push a 512 MiB layer, the same with ky or plain fetch; 111 MB with node:http). So does a blob
 * download (`streamResponse`), whose chunks fetch would copy (nodehttp.ts). The timeout there is an
 * idle one on the socket, so a large transfer on a slow link is not cut off while it progresses.
 */
export function kyHandler(timeoutMs = 60_000): Handler {
  return async (r) => {
    await applyDeferredTrust();
    const body = r.body?.();
    if (body instanceof Readable || (r.streamResponse && body === undefined)) return streamingRequest(r, body instanceof Readable ? body : undefined, timeoutMs);
    // Loaded on the first request: ky is a third of tsbuild's start-up, and most commands never talk HTTP.
    const { default: ky } = await import('ky');
    return ky(r.url, {
      method: r.method,
      headers: r.headers,
      body,
      redirect: 'manual',
      retry: 0,
      throwHttpErrors: false,
      timeout: timeoutMs,
      signal: r.signal,
    });
  };
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** Follows redirects itself so that credentials never travel to another host (blob stores, CDNs). */
export const followRedirects: Middleware = async (r, next) => {
  let req = r;
  for (let hop = 0; hop <= 10; hop++) {
    const res = await next(req);
    const loc = res.headers.get('location');
    if (!REDIRECTS.has(res.status) || !loc) return res;
    await res.body?.cancel().catch(() => undefined);
    const to = new URL(loc, req.url);
    const from = new URL(req.url);
    const headers = { ...req.headers };
    if (to.host !== from.host || to.protocol !== from.protocol) delete headers['authorization'];
    const see = res.status === 303;
    req = { ...req, url: to.toString(), headers, method: see ? 'GET' : req.method, body: see ? undefined : req.body };
  }
  throw new RegistryError('REGISTRY_REDIRECTS', `too many redirects from ${redactURL(r.url)}`);
};

/** Network-level failures worth another try (a reset connection, a refused or timed-out request). */
export function isTransient(e: unknown): boolean {
  if ((e as Error | undefined)?.name === 'TimeoutError') return true; // ky's, without loading ky
  if (e instanceof RegistryError && e.code === 'REGISTRY_TIMEOUT') return true; // node:http's, as ky's
  const cause = (e as { cause?: { code?: string } }).cause?.code ?? '';
  // TLS and certificate failures, and names that do not resolve, do not heal by trying again.
  if (/^(ERR_SSL|ERR_TLS|CERT_|UNABLE_TO|DEPTH_ZERO|SELF_SIGNED|ERR_INVALID_URL|ENOTFOUND)/.test(cause)) return false;
  if (e instanceof TypeError) return true; // fetch() reports every other network failure as TypeError
  const code = (e as { code?: string }).code;
  return typeof code === 'string' && /^(ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|UND_ERR_|ERR_STREAM_PREMATURE_CLOSE)/.test(code);
}

export interface RetryOptions {
  attempts: number;
  baseMs: number;
  onRetry?: (what: string, attempt: number, reason: string) => void;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new CancelledError());
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new CancelledError());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A controller that also aborts when `parent` does. Not AbortSignal.any: on Node 20 its composite
 * signal can be garbage-collected while a fetch still listens to it, and then Ctrl-C is missed
 * (seen here as a pull that ran on after SIGINT under load).
 */
export function linkedController(parent?: AbortSignal): AbortController {
  const ac = new AbortController();
  if (parent?.aborted) ac.abort(parent.reason);
  else parent?.addEventListener('abort', () => ac.abort(parent.reason), { once: true });
  return ac;
}

export function backoff(attempt: number, baseMs: number): number {
  return Math.min(30_000, baseMs * 2 ** attempt) * (0.75 + Math.random() * 0.5);
}

/** Retries 5xx and 429 answers and transient network errors, with exponential backoff. */
export function retry(o: RetryOptions): Middleware {
  return async (r, next) => {
    for (let attempt = 0; ; attempt++) {
      let reason: string;
      try {
        const res = await next(r);
        if (!(res.status >= 500 || res.status === 429) || attempt >= o.attempts) return res;
        reason = `HTTP ${res.status}`;
        const after = Number(res.headers.get('retry-after'));
        await res.body?.cancel().catch(() => undefined);
        o.onRetry?.(`${r.method} ${redactURL(r.url)}`, attempt + 1, reason);
        await sleep(Number.isFinite(after) && after > 0 ? Math.min(after * 1000, 30_000) : backoff(attempt, o.baseMs), r.signal);
        continue;
      } catch (e) {
        if (r.signal?.aborted) throw new CancelledError();
        if (!isTransient(e) || attempt >= o.attempts) throw e;
        reason = describeNetworkError(e);
      }
      o.onRetry?.(`${r.method} ${redactURL(r.url)}`, attempt + 1, reason);
      await sleep(backoff(attempt, o.baseMs), r.signal);
    }
  };
}

export function describeNetworkError(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code) return `${cause.code}${cause.message ? ` (${cause.message})` : ''}`;
  return (e as Error).message ?? String(e);
}

/** Query strings can hold tokens (`_state`, signed URLs): never print them. */

export interface Challenge {
  scheme: 'basic' | 'bearer';
  params: Record<string, string>;
}

/** Parses `WWW-Authenticate: Bearer realm="…",service="…",scope="…"` (RFC 7235 auth-params). */
export function parseChallenge(header: string | null): Challenge | undefined {
  if (!header) return undefined;
  const m = /^\s*(\w+)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const scheme = m[1]!.toLowerCase();
  if (scheme !== 'basic' && scheme !== 'bearer') return undefined;
  const params: Record<string, string> = {};
  const re = /([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?\s*/g;
  let p: RegExpExecArray | null;
  while ((p = re.exec(m[2]!))) params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!;
  return { scheme, params };
}

interface Token {
  value: string;
  expires: number;
}

export interface AuthOptions {
  domain: string;
  credentials: () => Promise<Credentials | undefined>;
  /** The transport used to talk to the token server (no auth layer of its own). */
  fetch: Handler;
  now?: () => number;
  onEvent?: (what: string) => void;
}

/**
 * Answers auth challenges. A challenge seen once is remembered for the host, so later requests get a
 * token for their scopes before they are sent (no 401 round trip per request, and no large upload is
 * sent just to be refused). Tokens are reused per scope set until shortly before they expire; a 401
 * on a request that carried a token drops that token and fetches a new one, once.
 */
export class Authenticator {
  private challenge: Challenge | undefined;
  private tokens = new Map<string, Token>();
  private pending = new Map<string, Promise<Token>>();
  private creds: Promise<Credentials | undefined> | undefined;
  constructor(private o: AuthOptions) {}

  private credentials(): Promise<Credentials | undefined> {
    this.creds ??= this.o.credentials();
    return this.creds;
  }

  /** A challenge seen elsewhere (the `/v2/` ping), so the first real request can carry a token. */
  learn(header: string | null): void {
    this.challenge ??= parseChallenge(header);
  }

  get middleware(): Middleware {
    return async (r, next) => {
      let auth = this.challenge ? await this.header(r, false) : undefined;
      const res = await next(auth ? { ...r, headers: { ...r.headers, authorization: auth } } : r);
      if (res.status !== 401) return res;
      const ch = parseChallenge(res.headers.get('www-authenticate'));
      if (!ch) return res;
      this.challenge = ch;
      auth = await this.header(r, true);
      if (!auth) return res;
      await res.body?.cancel().catch(() => undefined);
      return next({ ...r, headers: { ...r.headers, authorization: auth } });
    };
  }

  private async header(r: RegistryRequest, fresh: boolean): Promise<string | undefined> {
    const ch = this.challenge!;
    if (ch.scheme === 'basic') {
      const c = await this.credentials();
      return c ? 'Basic ' + Buffer.from(`${c.username}:${c.password}`).toString('base64') : undefined;
    }
    const scopes = [...new Set([...r.scopes, ...(ch.params['scope'] ? ch.params['scope'].split(' ') : [])])].sort();
    const key = scopes.join(' ');
    const now = (this.o.now ?? Date.now)();
    const have = this.tokens.get(key);
    if (have && !fresh && have.expires > now) return `Bearer ${have.value}`;
    // Parallel blob transfers that need the same scopes share one token request.
    let p = this.pending.get(key);
    if (!p) {
      p = this.fetchToken(ch, scopes, r.signal).finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    const t = await p;
    this.tokens.set(key, t);
    return `Bearer ${t.value}`;
  }

  private async fetchToken(ch: Challenge, scopes: string[], signal?: AbortSignal): Promise<Token> {
    const realm = ch.params['realm'];
    if (!realm) throw new RegistryError('REGISTRY_AUTH', `${this.o.domain} asked for a bearer token but named no realm to get it from`);
    let realmURL: URL;
    try {
      realmURL = new URL(realm);
    } catch {
      throw new RegistryError('REGISTRY_AUTH', `${this.o.domain} named an invalid token realm "${realm}"`);
    }
    const c = await this.credentials();
    const service = ch.params['service'];
    let res: Response;
    this.o.onEvent?.(`token ${scopes.join(' ')}`);
    if (c?.identityToken) {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: c.identityToken, client_id: 'tsbuild', access_type: 'offline' });
      if (service) form.set('service', service);
      if (scopes.length) form.set('scope', scopes.join(' '));
      res = await this.o.fetch({ method: 'POST', url: realmURL.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: () => form.toString(), scopes: [], signal });
    } else {
      if (service) realmURL.searchParams.set('service', service);
      for (const s of scopes) realmURL.searchParams.append('scope', s);
      const headers: Record<string, string> = {};
      if (c) headers['authorization'] = 'Basic ' + Buffer.from(`${c.username}:${c.password}`).toString('base64');
      res = await this.o.fetch({ method: 'GET', url: realmURL.toString(), headers, scopes: [], signal });
    }
    const text = await readCapped(res, 1 << 20);
    if (res.status === 401 || res.status === 403) {
      throw new RegistryError('REGISTRY_UNAUTHORIZED', `401 unauthorized: the token server for ${this.o.domain} refused ${c ? 'your credentials' : 'anonymous access'}; run tsbuild login ${this.o.domain}`, res.status);
    }
    if (res.status !== 200) throw new RegistryError('REGISTRY_AUTH', `the token server ${realmURL.host} answered ${res.status} for ${this.o.domain}: ${text.slice(0, 200)}`, res.status);
    let j: { token?: string; access_token?: string; expires_in?: number; issued_at?: string };
    try {
      j = JSON.parse(text) as typeof j;
    } catch {
      throw new RegistryError('REGISTRY_AUTH', `the token server ${realmURL.host} sent something that is not JSON`);
    }
    const value = j.token || j.access_token;
    if (!value) throw new RegistryError('REGISTRY_AUTH', `the token server ${realmURL.host} sent no token`);
    const lifetime = (j.expires_in && j.expires_in > 0 ? j.expires_in : 60) * 1000;
    const issued = j.issued_at ? Date.parse(j.issued_at) : NaN;
    const start = Number.isFinite(issued) ? Math.min(issued, (this.o.now ?? Date.now)()) : (this.o.now ?? Date.now)();
    // Renew a little early: a token that expires mid-request makes the registry refuse a large upload.
    return { value, expires: start + lifetime - Math.min(10_000, lifetime / 4) };
  }
}

/** Reads a response body as text, refusing bodies above `cap` bytes (a lying server cannot fill memory). */
export async function readCapped(res: Response, cap: number): Promise<string> {
  return (await readCappedBytes(res, cap)).toString('utf8');
}

export async function readCappedBytes(res: Response, cap: number): Promise<Buffer> {
  const len = Number(res.headers.get('content-length'));
  if (Number.isFinite(len) && len > cap) {
    await res.body?.cancel().catch(() => undefined);
    throw new RegistryError('REGISTRY_TOO_LARGE', `response of ${len} bytes from ${redactURL(res.url)} exceeds the ${cap}-byte limit`);
  }
  const chunks: Buffer[] = [];
  let got = 0;
  if (!res.body) return Buffer.alloc(0);
  for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) {
    got += c.length;
    if (got > cap) {
      await res.body.cancel().catch(() => undefined);
      throw new RegistryError('REGISTRY_TOO_LARGE', `response from ${redactURL(res.url)} exceeds the ${cap}-byte limit`);
    }
    chunks.push(Buffer.from(c));
  }
  return Buffer.concat(chunks);
}
