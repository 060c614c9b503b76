/** Image names as the store keeps them. */
import { TsbuildError } from '../errors/index.js';

/** `hello` → `hello:latest`; a name with a tag or digest is kept. */
export function normalizeName(name: string): string {
  if (name.includes('@')) return name;
  const slash = name.lastIndexOf('/');
  return name.slice(slash + 1).includes(':') ? name : `${name}:latest`;
}

const NAME_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?::[0-9]+)?(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127}|@sha256:[a-f0-9]{64})?$/;
export function validateName(name: string): void {
  if (!NAME_RE.test(name)) {
    throw new TsbuildError('INVALID_REFERENCE', `invalid image name "${name}": use lowercase letters, digits and separators, e.g. myapp:1.0`);
  }
}
