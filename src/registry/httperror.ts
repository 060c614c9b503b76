/** The registry module's HTTP error, and URLs as they may be shown (no credentials, no query). */
import { TsbuildError } from '../errors/index.js';

export class RegistryError extends TsbuildError {
  readonly status: number | undefined;
  constructor(code: string, message: string, status?: number, options?: { cause?: unknown }) {
    super(code, message, options);
    this.status = status;
  }
}

/** A URL for messages: no user, password or query string (signed blob URLs carry secrets there). */
export function redactURL(u: string): string {
  try {
    const url = new URL(u);
    url.username = '';
    url.password = '';
    return url.origin + url.pathname + (url.search ? '?…' : '');
  } catch {
    return '<url>';
  }
}
