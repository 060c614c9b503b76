/**
 * ARG and ENV scope as BuildKit's dispatcher has it: global ARGs (before the first FROM) usable in
 * FROM lines; in a stage, its own ARGs (a global is visible only once redeclared) and ENV, where ENV
 * wins; the automatic platform ARGs; word expansion with the Dockerfile line on every error.
 */
import { DockerfileSyntaxError, processWord, type Dockerfile } from '../parser/index.js';
import { formatPlatform, hostPlatform, type Platform } from '../image/index.js';
import { envToMap } from './config.js';
import type { StageState } from './types.js';

/** Proxy ARGs are predefined: usable without declaring them, and kept out of RUN's history line. */
export const PROXY_ARGS = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy'];

/** TARGET* name the platform built for (every stage sees the same, as in BuildKit); BUILD* this machine. */
export function platformArgs(target: Platform = hostPlatform()): Map<string, string> {
  const b = hostPlatform();
  return new Map([
    ['TARGETPLATFORM', formatPlatform(target)], ['TARGETOS', target.os], ['TARGETARCH', target.architecture], ['TARGETVARIANT', target.variant ?? ''],
    ['BUILDPLATFORM', formatPlatform(b)], ['BUILDOS', b.os], ['BUILDARCH', b.architecture], ['BUILDVARIANT', b.variant ?? ''],
  ]);
}

/** The defined values of several scopes, the first that defines a name winning. */
export function mapOf(...maps: Map<string, string | undefined>[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const x of maps) for (const [k, v] of x) if (v !== undefined && !m.has(k)) m.set(k, v);
  return m;
}

/**
 * Expands a word with the Dockerfile's escape character (`# escape=` changes it: under a backtick a
 * backslash is an ordinary character, as BuildKit's shell lexer has it); heredoc bodies keep their
 * quotes (`rawQuotes`). Errors carry the Dockerfile line.
 */
export function expand(word: string, env: Map<string, string>, line: number, escape = '\\', heredoc = false): string {
  try {
    return processWord(word, env, { escapeToken: escape, ...(heredoc ? { rawQuotes: true } : {}) }).result;
  } catch (e) {
    throw new DockerfileSyntaxError((e as Error).message, line);
  }
}

/** Global ARGs: a --build-arg wins over the default, which may use earlier globals. */
export function globalArgs(df: Dockerfile, buildArgs: Map<string, string>, used: Set<string>, auto: Map<string, string>): Map<string, string | undefined> {
  const globals = new Map<string, string | undefined>();
  for (const a of df.globalArgs) {
    for (const { key, value } of a.args) {
      let v = buildArgs.get(key);
      if (v !== undefined) used.add(key);
      else if (value !== undefined) v = expand(value, mapOf(globals, auto), a.range.startLine, df.escapeToken);
      globals.set(key, v);
    }
  }
  return globals;
}

/** What a stage's instruction sees: its ARGs, then its ENV over them. */
export function stageScope(st: StageState): Map<string, string> {
  const m = new Map<string, string>();
  for (const [k, v] of st.args) if (v !== undefined) m.set(k, v);
  for (const [k, v] of envToMap(st.config.config.Env)) m.set(k, v);
  return m;
}
