/**
 * One registry, one client: `endpoint()` pings `/v2/` once (https; plain http only for insecure hosts),
 * then each call names the repository and the actions it needs so the auth layer can get the right
 * token. Every answer that is not what the protocol promises becomes a RegistryError that quotes the
 * registry's own error code and says what to do.
 */
import { Readable } from 'node:stream';
import { TsbuildError } from '../errors/index.js';
import type { Credentials } from './credentials.js';
import { lookupCredentials } from './credentials.js';
import { apiHost } from './reference.js';
import { Authenticator, chain, followRedirects, describeNetworkError, kyHandler, nodeBody, readCapped, readCappedBytes, retry, RegistryError, type Handler, type RegistryRequest } from './transport.js';

export type RegistryEvent =
  | { type: 'retry'; what: string; attempt: number; reason: string }
  | { type: 'token'; what: string }
  | { type: 'fallback'; what: string };

export interface ClientOptions {
  domain: string;
  /** Plain HTTP allowed (after https fails), as Docker's insecure-registries. */
  insecure?: boolean;
  credentials?: (domain: string) => Promise<Credentials | undefined>;
  retries?: number;
  retryBaseMs?: number;
  timeoutMs?: number;
  onEvent?: (e: RegistryEvent) => void;
  /** Replaces the HTTP exchange (tests). */
  base?: Handler;
}

/** Hosts Docker treats as insecure by default: loopback names and addresses. */
export function isLoopbackHost(domain: string): boolean {
  const host = domain.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return host === 'localhost' || host.endsWith('.localhost') || /^127\.\d+\.\d+\.\d+$/.test(host) || host === '::1';
}

export const MANIFEST_LIMIT = 4 << 20;

/** OpenSSL's verification failures, as Node reports them (the error, or fetch's cause). */
function isCertificateError(e: unknown): boolean {
  const code = (e as { code?: unknown; cause?: { code?: unknown } }).cause?.code ?? (e as { code?: unknown }).code;
  return typeof code === 'string' && /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ERR_TLS_CERT_ALTNAME_INVALID/.test(code);
}

interface RegistryErrorBody {
  errors?: { code?: string; message?: string; detail?: unknown }[];
}

export class RegistryClient {
  readonly domain: string;
  private base?: string;
  private pinging?: Promise<string>;
  private send: Handler;
  private plain: Handler;
  private auth: Authenticator;
  constructor(private o: ClientOptions) {
    this.domain = o.domain;
    const bottom = o.base ?? kyHandler(o.timeoutMs);
    const onRetry = (what: string, attempt: number, reason: string) => o.onEvent?.({ type: 'retry', what, attempt, reason });
    this.plain = chain([retry({ attempts: o.retries ?? 4, baseMs: o.retryBaseMs ?? 200, onRetry }), followRedirects], bottom);
    const creds = o.credentials ?? lookupCredentials;
    const auth = (this.auth = new Authenticator({ domain: o.domain, credentials: () => creds(o.domain), fetch: this.plain, onEvent: (what) => o.onEvent?.({ type: 'token', what }) }));
    this.send = chain([auth.middleware], this.plain);
  }

  /** `https://host` or, for an insecure registry that does not speak TLS, `http://host`. */
  endpoint(signal?: AbortSignal): Promise<string> {
    if (this.base) return Promise.resolve(this.base);
    this.pinging ??= this.ping(signal).then(
      (b) => (this.base = b),
      (e) => {
        this.pinging = undefined;
        throw e;
      },
    );
    return this.pinging;
  }

  private async ping(signal?: AbortSignal): Promise<string> {
    const host = apiHost(this.domain);
    const schemes = this.o.insecure ? ['https', 'http'] : ['https'];
    let last: unknown;
    let untrusted: unknown;
    for (const s of schemes) {
      const base = `${s}://${host}`;
      try {
        const res = await this.plain({ method: 'GET', url: `${base}/v2/`, headers: {}, scopes: [], signal });
        await res.body?.cancel().catch(() => undefined);
        if (res.status === 401) this.auth.learn(res.headers.get('www-authenticate'));
        if (res.status === 200 || res.status === 401) return base;
        last = new RegistryError('REGISTRY_UNSUPPORTED', `${host} answered ${res.status} to GET /v2/: it does not look like an OCI registry`, res.status);
      } catch (e) {
        if (signal?.aborted) throw e;
        last = e;
        if (s === 'https' && isCertificateError(e)) untrusted = e;
      }
    }
    // A registry that speaks TLS with a certificate we do not trust answers the plain-HTTP attempt
    // with 400 ("HTTP request to an HTTPS server"): the certificate is what to report.
    if (untrusted) throw new RegistryError('REGISTRY_UNREACHABLE', `cannot reach registry ${host}: its TLS certificate is not trusted: ${describeNetworkError(untrusted)}. If it is signed by a private authority, put that authority's certificate (PEM) in a file and name it in NODE_EXTRA_CA_CERTS.`, undefined, { cause: untrusted });
    if (last instanceof TsbuildError) throw last;
    const tls = /SSL|TLS|CERT|wrong version/i.test(describeNetworkError(last));
    const hint = this.o.insecure || !tls ? '' : ` If it serves plain HTTP, pass --insecure-registry ${this.domain}.`;
    throw new RegistryError('REGISTRY_UNREACHABLE', `cannot reach registry ${host}: ${describeNetworkError(last)}.${hint}`, undefined, { cause: last });
  }

  /** Sends one request to this registry (a path, or an absolute URL the registry gave us). */
  async request(method: string, where: string, o: { repo?: string; actions?: string[]; extraScopes?: string[]; headers?: Record<string, string>; body?: () => BodyInit | Readable | undefined; signal?: AbortSignal; streamResponse?: boolean } = {}): Promise<Response> {
    const base = await this.endpoint(o.signal);
    const url = /^https?:\/\//.test(where) ? where : base + where;
    const scopes = [...(o.repo ? [`repository:${o.repo}:${(o.actions ?? ['pull']).join(',')}`] : []), ...(o.extraScopes ?? [])];
    const r: RegistryRequest = { method, url, headers: o.headers ?? {}, body: o.body, scopes, signal: o.signal, streamResponse: o.streamResponse };
    return this.send(r);
  }

  /** Turns an unexpected answer into an error a user can act on. `what` names the object. */
  async fail(res: Response, what: string): Promise<never> {
    let body: RegistryErrorBody = {};
    try {
      body = JSON.parse(await readCapped(res, 64 << 10)) as RegistryErrorBody;
    } catch {
      // not JSON: the status says enough
    }
    const first = body.errors?.[0];
    const rc = first?.code ?? '';
    const said = first ? `${rc}: ${first.message ?? ''}`.trim() : `HTTP ${res.status}`;
    if (res.status === 401) throw new RegistryError('REGISTRY_UNAUTHORIZED', `401 unauthorized: ${this.domain} refused access to ${what} (${said}); run tsbuild login ${this.domain}`, 401);
    if (res.status === 403) throw new RegistryError('REGISTRY_DENIED', `403 denied: ${this.domain} does not allow this on ${what} (${said}); check the account's permissions`, 403);
    if (rc === 'MANIFEST_UNKNOWN' || (res.status === 404 && what.includes(':') && !rc)) throw new RegistryError('MANIFEST_UNKNOWN', `manifest unknown: ${what} (${said}); check the name and tag`, 404);
    if (rc === 'NAME_UNKNOWN') throw new RegistryError('NAME_UNKNOWN', `repository unknown: ${what} (${said}); check the name`, 404);
    if (rc === 'BLOB_UNKNOWN' || (res.status === 404 && what.startsWith('blob'))) throw new RegistryError('BLOB_UNKNOWN', `blob unknown: ${what} on ${this.domain} (${said})`, 404);
    throw new RegistryError('REGISTRY_ERROR', `registry ${this.domain} answered ${res.status} for ${what}: ${said}`, res.status);
  }

  async getManifest(repo: string, ref: string, accept: string[], signal?: AbortSignal): Promise<{ bytes: Buffer; mediaType: string; digestHeader?: string }> {
    const res = await this.request('GET', `/v2/${repo}/manifests/${ref}`, { repo, headers: { accept: accept.join(', ') }, signal });
    if (res.status !== 200) return this.fail(res, `${this.domain}/${repo}${ref.includes(':') ? '@' : ':'}${ref}`);
    const bytes = await readCappedBytes(res, MANIFEST_LIMIT);
    return { bytes, mediaType: (res.headers.get('content-type') ?? '').split(';')[0]!.trim(), digestHeader: res.headers.get('docker-content-digest') ?? undefined };
  }

  /** Every tag of `repo` (the distribution API's tags/list, following its Link pages), sorted. */
  async listTags(repo: string, signal?: AbortSignal): Promise<string[]> {
    const tags: string[] = [];
    let where: string | undefined = `/v2/${repo}/tags/list?n=1000`;
    // A registry that pages for ever (or lies) is cut off: 100 pages of 1,000 are more than any repository has.
    for (let page = 0; where !== undefined && page < 100; page++) {
      const res = await this.request('GET', where, { repo, signal });
      if (res.status !== 200) return this.fail(res, `${this.domain}/${repo}`);
      const body = JSON.parse(await readCapped(res, 4 << 20)) as { tags?: string[] | null };
      tags.push(...(body.tags ?? []));
      const next = /<([^>]+)>;\s*rel="?next"?/.exec(res.headers.get('link') ?? '')?.[1];
      where = next; // a path (the base is added) or a full URL, as registries write it
    }
    return [...new Set(tags)].sort();
  }

  /** Whether the registry has a blob in `repo` (its size when it does). */
  async blobSize(repo: string, digest: string, actions = ['pull'], signal?: AbortSignal): Promise<number | undefined> {
    const res = await this.request('HEAD', `/v2/${repo}/blobs/${digest}`, { repo, actions, signal });
    if (res.status !== 200 && res.status !== 404) return this.fail(res, `blob ${digest} in ${repo}`);
    await res.body?.cancel().catch(() => undefined);
    return res.status === 200 ? Number(res.headers.get('content-length') ?? '0') : undefined;
  }

  /** Opens a blob from `offset`; `resumed` is false when the server ignored the Range and sent it all. */
  async openBlob(repo: string, digest: string, offset: number, signal?: AbortSignal): Promise<{ body: Readable; resumed: boolean }> {
    const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
    const res = await this.request('GET', `/v2/${repo}/blobs/${digest}`, { repo, headers, signal, streamResponse: true });
    if (res.status === 416 && offset > 0) {
      await res.body?.cancel().catch(() => undefined);
      return this.openBlob(repo, digest, 0, signal);
    }
    if (res.status !== 200 && res.status !== 206) return this.fail(res, `blob ${digest} in ${repo}`);
    if (!res.body) throw new RegistryError('REGISTRY_ERROR', `registry ${this.domain} sent no body for blob ${digest}`);
    const body = nodeBody(res) ?? Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
    // Until the caller iterates it (after opening its file), an abort must not be an unhandled 'error'.
    body.on('error', () => undefined);
    return { body, resumed: res.status === 206 };
  }

  /** Starts an upload, or mounts the blob from another repository; `location` is where to send data. */
  async startUpload(repo: string, mount?: { digest: string; from: string }, signal?: AbortSignal): Promise<{ mounted: boolean; location?: string }> {
    const q = mount ? `?mount=${encodeURIComponent(mount.digest)}&from=${encodeURIComponent(mount.from)}` : '';
    const res = await this.request('POST', `/v2/${repo}/blobs/uploads/${q}`, {
      repo,
      actions: ['pull', 'push'],
      extraScopes: mount ? [`repository:${mount.from}:pull`] : [],
      headers: { 'content-length': '0' },
      signal,
    });
    await res.body?.cancel().catch(() => undefined);
    if (res.status === 201 && mount) return { mounted: true };
    if (res.status !== 202) return this.fail(res, `upload to ${repo}`);
    return { mounted: false, location: this.absolute(res) };
  }

  absolute(res: Response): string {
    const loc = res.headers.get('location');
    if (!loc) throw new RegistryError('REGISTRY_ERROR', `registry ${this.domain} started an upload but gave no Location`);
    return new URL(loc, res.url || this.base).toString();
  }

  async putManifest(repo: string, ref: string, bytes: Buffer, mediaType: string, signal?: AbortSignal): Promise<string | undefined> {
    const res = await this.request('PUT', `/v2/${repo}/manifests/${ref}`, { repo, actions: ['pull', 'push'], headers: { 'content-type': mediaType }, body: () => new Uint8Array(bytes), signal });
    if (res.status !== 201 && res.status !== 200 && res.status !== 202) {
      return this.fail(res, `manifest ${this.domain}/${repo}:${ref}`);
    }
    await res.body?.cancel().catch(() => undefined);
    return res.headers.get('docker-content-digest') ?? undefined;
  }
}
