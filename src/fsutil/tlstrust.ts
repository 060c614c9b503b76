/**
 * The extra certificate authorities a user names with NODE_EXTRA_CA_CERTS, applied at the first HTTPS
 * request instead of at start-up.
 *
 * Node 20 reads that variable before any JavaScript runs and builds its whole root store from it:
 * about 140 bundled roots plus the file, parsed by OpenSSL, 35-40 ms of every process on a 2-core VM
 * (`node -e 0`: 61 ms with it, 23 ms without). Most tsbuild commands never open a TLS connection, so
 * bin/tsbuild moves the variable to TSBUILD_DEFERRED_CA_CERTS before Node starts, and the HTTP
 * clients (the registry transport, ADD of a URL) call `applyDeferredTrust()` before their first
 * request. The trust is the same: Node's bundled roots plus the file's certificates, for every HTTPS
 * connection of the process, fetch and node:https alike. Run as `node bin/tsbuild.js`, nothing is
 * moved and Node applies the variable itself.
 */
import fs from 'node:fs';
import type tls from 'node:tls';
import { TsbuildError } from '../errors/index.js';

export const DEFERRED_CA_ENV = 'TSBUILD_DEFERRED_CA_CERTS';

/** undici's process-wide dispatcher, which Node's fetch uses; the symbol is undici's contract with Node. */
const GLOBAL_DISPATCHER = Symbol.for('undici.globalDispatcher.1');

type DispatcherClass = new (o: { connect: { secureContext: tls.SecureContext } }) => object;

let applied: Promise<void> | undefined;

/**
 * Installs the deferred certificate authorities for this process's HTTPS clients; later calls do
 * nothing. A file that cannot be read or parsed is reported and skipped, as Node does at start-up.
 */
export function applyDeferredTrust(): Promise<void> {
  return (applied ??= apply(process.env[DEFERRED_CA_ENV]));
}

async function apply(file: string | undefined): Promise<void> {
  if (!file) return;
  // Loaded here: most commands never open a TLS connection.
  const [{ default: tls }, { default: https }] = await Promise.all([import('node:tls'), import('node:https')]);
  let secureContext: tls.SecureContext;
  try {
    secureContext = tls.createSecureContext({ ca: [...tls.rootCertificates, fs.readFileSync(file, 'utf8')] });
  } catch (e) {
    process.stderr.write(`Warning: Ignoring extra certs from \`${file}\` (NODE_EXTRA_CA_CERTS), load failed: ${e instanceof Error ? e.message : String(e)}\n`);
    return;
  }
  // node:https merges its agent's options into every connection it opens.
  (https.globalAgent.options as tls.ConnectionOptions).secureContext = secureContext;
  // Node loads undici when a global it provides is first read (fetch itself only when first called);
  // undici then installs its default dispatcher, an Agent. An Agent of the same class with the trust
  // replaces it; undici passes `connect` options on to tls.connect.
  void globalThis.Response;
  const g = globalThis as unknown as Record<symbol, object | undefined>;
  const current = g[GLOBAL_DISPATCHER];
  if (!current) throw new TsbuildError('TLS_TRUST', `this Node (${process.version}) has no fetch dispatcher to give the certificates of NODE_EXTRA_CA_CERTS to; run tsbuild as \`node bin/tsbuild.js\`, which leaves the variable to Node`);
  const Agent = current.constructor as DispatcherClass;
  g[GLOBAL_DISPATCHER] = new Agent({ connect: { secureContext } });
}

/**
 * The environment for a program tsbuild starts that is not tsbuild (a credential helper): the
 * variable back where the user put it, in case that program is a Node program too.
 */
export function userEnv(): NodeJS.ProcessEnv {
  const deferred = process.env[DEFERRED_CA_ENV];
  if (!deferred) return process.env;
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_EXTRA_CA_CERTS: deferred };
  delete env[DEFERRED_CA_ENV];
  return env;
}
