/**
 * Image references with Docker's normalisation (distribution/reference): `alpine` is
 * `docker.io/library/alpine:latest`; the first path component is a registry host only when it has a
 * dot or a port or is `localhost`; a tag and a digest may both be given, and then the digest wins.
 */
import { TsbuildError } from '../errors/index.js';

export class ReferenceError extends TsbuildError {
  constructor(ref: string, why: string) {
    super('INVALID_REFERENCE', `invalid image reference "${ref}": ${why}`);
  }
}

export interface Reference {
  /** Registry host as written (`docker.io`, `localhost:5000`, `ghcr.io`). */
  domain: string;
  /** Repository path inside the registry (`library/alpine`). */
  path: string;
  tag?: string;
  digest?: string;
}

export const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DOMAIN = 'index.docker.io';

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?$|^\[[0-9a-fA-F:]+\](?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;

export function parseReference(input: string): Reference {
  const ref = input.trim();
  if (ref === '') throw new ReferenceError(input, 'it is empty');
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw new ReferenceError(input, `"${digest}" is not a digest (expected sha256:<64 hex digits>)`);
    if (digest.startsWith('sha256:') && !/^sha256:[a-f0-9]{64}$/.test(digest)) throw new ReferenceError(input, 'a sha256 digest has 64 lowercase hex digits');
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new ReferenceError(input, `tag "${tag}" may hold letters, digits, _, . and - (at most 128, not starting with . or -)`);
  }
  let domain = DEFAULT_DOMAIN;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (/[.:]/.test(first) || first === 'localhost' || first.toLowerCase() !== first) {
      domain = first;
      path = rest.slice(slash + 1);
    }
  }
  if (!DOMAIN.test(domain)) throw new ReferenceError(input, `"${domain}" is not a valid registry host`);
  if (domain === LEGACY_DOMAIN) domain = DEFAULT_DOMAIN;
  if (path === '') throw new ReferenceError(input, 'the repository name is missing');
  if (path !== path.toLowerCase()) throw new ReferenceError(input, 'repository names must be lowercase');
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = `library/${path}`;
  for (const c of path.split('/')) {
    if (!PATH_COMPONENT.test(c)) throw new ReferenceError(input, `"${c}" is not a valid name component (lowercase letters, digits, and . _ - between them)`);
  }
  if (/^[a-f0-9]{64}$/.test(path.replace(/^library\//, '')) && domain === DEFAULT_DOMAIN) {
    throw new ReferenceError(input, 'a 64-digit hex string is an image id, not a name');
  }
  if (`${domain}/${path}`.length > 255) throw new ReferenceError(input, 'the name is longer than 255 characters');
  if (!tag && !digest) tag = 'latest';
  return { domain, path, tag, digest };
}

/** `docker.io/library/alpine` */
export function repoName(r: Reference): string {
  return `${r.domain}/${r.path}`;
}

/** The canonical string: `docker.io/library/alpine:latest`, `host/x@sha256:…`. */
export function formatReference(r: Reference): string {
  return repoName(r) + (r.tag && !r.digest ? `:${r.tag}` : '') + (r.digest ? `@${r.digest}` : '');
}

/** The short form Docker shows and tsbuild stores names under: `alpine:latest`, `localhost:5000/x:1`. */
export function familiarName(r: Reference): string {
  let name = repoName(r);
  if (r.domain === DEFAULT_DOMAIN) name = r.path.startsWith('library/') && r.path.split('/').length === 2 ? r.path.slice('library/'.length) : r.path;
  return name + (r.digest ? `@${r.digest}` : `:${r.tag ?? 'latest'}`);
}

/** The host to talk to: Docker Hub's API lives on registry-1.docker.io. */
export function apiHost(domain: string): string {
  return domain === DEFAULT_DOMAIN ? 'registry-1.docker.io' : domain;
}

/** The key Docker's config.json uses for a registry's credentials. */
export function credentialKey(domain: string): string {
  return domain === DEFAULT_DOMAIN ? 'https://index.docker.io/v1/' : domain;
}
