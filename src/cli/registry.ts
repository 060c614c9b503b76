/** `tsbuild pull`, `push`, `tag`, `login`, `logout`. */
import fs from 'node:fs';
import { listImages, login, logout, pull, pullAllTags, push, storeRoot, tag, type OpOptions } from '../app/index.js';
import { prompt } from './ask.js';
import { UsageError } from '../errors/index.js';
import { checkContentTrust, contentTrustFlag, chunkSizeOf, compressionFlags, compressionOf, flagBool, flagStr, helpFlag, insecureFlag, logToStderr, registryOptions, rootFlag, storeFrom, type FlagSpec, type Parsed } from './args.js';

export const pullFlags: FlagSpec[] = [
  { name: 'platform', type: 'string', arg: 'os/arch[/variant]', help: 'platform to pick from a multi-platform image (default: this machine)' },
  { name: 'quiet', short: 'q', type: 'bool', help: 'print only the image name and digest' },
  { name: 'all-tags', short: 'a', type: 'bool', help: 'pull every tag the registry lists for the repository NAME' }, contentTrustFlag,
  { name: 'snapshotter', type: 'string', arg: 'overlayfs', help: 'storage driver to unpack into' },
  insecureFlag,
  rootFlag,
  helpFlag,
];
export const pushFlags: FlagSpec[] = [
  ...compressionFlags, { name: 'quiet', short: 'q', type: 'bool', help: 'print only the digest' },
  { name: 'all-tags', short: 'a', type: 'bool', help: 'push every local tag of the repository NAME' }, contentTrustFlag, insecureFlag, rootFlag, helpFlag,
];
export const tagFlags: FlagSpec[] = [rootFlag, helpFlag];
export const loginFlags: FlagSpec[] = [
  { name: 'username', short: 'u', type: 'string', arg: 'user', help: 'user name' },
  { name: 'password', short: 'p', type: 'string', arg: 'password', help: 'password (prefer --password-stdin)' },
  { name: 'password-stdin', type: 'bool', help: 'read the password from stdin' },
  insecureFlag,
  rootFlag,
  helpFlag,
];
export const logoutFlags: FlagSpec[] = [helpFlag];

/** Transfer progress on stderr, unless -q. */
function progress(p: Parsed, signal: AbortSignal): OpOptions {
  return { signal, onEvent: flagBool(p, 'quiet') ? undefined : logToStderr };
}

export async function pullCommand(p: Parsed, signal: AbortSignal): Promise<number> {
  if (p.positional.length !== 1) throw new UsageError('pull takes one image reference, e.g. tsbuild pull localhost:5000/busybox:latest');
  checkContentTrust(p);
  const store = await storeFrom(p);
  const req = { ref: p.positional[0]!, platform: flagStr(p, 'platform'), ...registryOptions(p) };
  const images = flagBool(p, 'all-tags') ? await pullAllTags(store, req, progress(p, signal)) : [await pull(store, req, progress(p, signal))];
  for (const img of images) process.stdout.write(`${img.name}: ${img.manifestDigest}\n`);
  return 0;
}

export async function pushCommand(p: Parsed, signal: AbortSignal): Promise<number> {
  if (p.positional.length < 1 || p.positional.length > 2) throw new UsageError('push takes an image name and optionally a destination: tsbuild push NAME[:TAG] [REGISTRY/NAME[:TAG]]');
  checkContentTrust(p);
  const all = flagBool(p, 'all-tags');
  const name = p.positional[0]!;
  if (all && (p.positional.length > 1 || name.includes('@') || name.slice(name.lastIndexOf('/') + 1).includes(':'))) {
    throw new UsageError(`push --all-tags takes a repository without a tag or destination, e.g. tsbuild push -a localhost:5000/app (got ${p.positional.join(' ')})`);
  }
  const store = await storeFrom(p);
  // As Docker's: the tags of that repository in this store, each pushed to the same name.
  const images = all ? listImages(store).flatMap((i) => (i.name && i.name.slice(0, i.name.lastIndexOf(':')) === name ? [i.name] : [])).sort() : [name];
  if (images.length === 0) throw new UsageError(`An image does not exist locally with the repository: ${name} (see tsbuild images)`);
  for (const image of images) {
    const request = { image, dest: all ? undefined : p.positional[1], compression: compressionOf(p) ?? { type: 'gzip' as const }, chunkSize: chunkSizeOf(p), ...registryOptions(p) };
    const r = await push(store, request, progress(p, signal));
    process.stdout.write(flagBool(p, 'quiet') ? `${r.digest}\n` : `${r.reference}: digest: ${r.digest}\n`);
  }
  return 0;
}

export async function tagCommand(p: Parsed): Promise<number> {
  if (p.positional.length !== 2) throw new UsageError('tag takes a source image and a new name: tsbuild tag SOURCE TARGET[:TAG]');
  tag(await storeFrom(p), p.positional[0]!, p.positional[1]!);
  return 0;
}

function readStdin(): string {
  try {
    return fs.readFileSync(0, 'utf8').replace(/\r?\n$/, '');
  } catch (e) {
    throw new UsageError(`cannot read the password from stdin: ${(e as Error).message}`);
  }
}

export async function loginCommand(p: Parsed): Promise<number> {
  if (p.positional.length !== 1) throw new UsageError('login takes one registry host, e.g. tsbuild login -u me --password-stdin registry.example.com');
  let username = flagStr(p, 'username');
  let password = flagStr(p, 'password');
  if (flagBool(p, 'password-stdin')) {
    if (password !== undefined) throw new UsageError('--password and --password-stdin are exclusive');
    if (!username) throw new UsageError('--password-stdin needs --username');
    password = readStdin();
  }
  // On a terminal, what is missing is asked for, as Docker does; the password is not echoed.
  if (process.stdin.isTTY) {
    if (!username) username = (await prompt('Username: ', false)).trim();
    if (password === undefined) password = await prompt('Password: ', true);
  }
  if (!username || password === undefined) throw new UsageError('login needs --username and a password (--password-stdin or --password), or a terminal to ask for them');
  if (flagStr(p, 'password') !== undefined) process.stderr.write('WARNING: --password shows the password in the process list; use --password-stdin\n');
  const where = await login(storeRoot(flagStr(p, 'root')), { host: p.positional[0]!, credentials: { username, password }, ...registryOptions(p) });
  process.stdout.write(`Login Succeeded (credentials stored in ${where})\n`);
  return 0;
}

export async function logoutCommand(p: Parsed): Promise<number> {
  if (p.positional.length !== 1) throw new UsageError('logout takes one registry host');
  const domain = await logout(p.positional[0]!);
  process.stdout.write(`Removing login credentials for ${domain}\n`);
  return 0;
}
