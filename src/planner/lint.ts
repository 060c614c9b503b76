/**
 * The build checks: BuildKit's rules (same names, same meaning; its `--check` list) and the practices
 * the project's notes recommend, as pure functions of a parsed Dockerfile. Each finding has the line,
 * the rule, a one-line message and a short explanation of why it matters.
 */
import { suggest, type Dockerfile, type Instruction, type Stage } from '../parser/index.js';

export interface Finding {
  rule: string;
  line: number;
  message: string;
}

export interface LintInput {
  df: Dockerfile;
  text: string;
  /** Is a context path excluded by .dockerignore (CopyIgnoredFile); absent when no context was given. */
  ignored?: (p: string) => boolean;
  /** Files in the build context, when known (LargeContextWithoutIgnore). */
  contextFiles?: number;
  hasDockerignore?: boolean;
}

export const RULES: Record<string, string> = {
  StageNameCasing: 'Stage names should be lowercase: image references and --target are, so mixed case invites mismatches.',
  FromAsCasing: "The 'as' keyword should match the case of 'FROM' on the same line.",
  JSONArgsRecommended: 'The shell form of CMD and ENTRYPOINT runs under /bin/sh -c, which does not forward signals: the process cannot stop gracefully.',
  UndefinedVar: 'A variable that no ARG or ENV before it defines expands to an empty string, silently.',
  UndefinedArgInFrom: 'FROM can only use ARGs declared before the first FROM (or the predefined platform ARGs).',
  WorkdirRelativePath: 'A relative WORKDIR depends on the base image\'s working directory, which can change under you.',
  SecretsUsedInArgOrEnv: 'ARG and ENV values are kept in the image history and config; use RUN --mount=type=secret for secrets.',
  MultipleInstructionsDisallowed: 'Only the last CMD, ENTRYPOINT or HEALTHCHECK of a stage takes effect; the others are dead code.',
  ConsistentInstructionCasing: 'Instructions should all use the same case (the majority\'s), for readability.',
  ReservedStageName: "'scratch' and 'context' have fixed meanings in FROM and COPY --from and cannot name a stage usefully.",
  LegacyKeyValueFormat: 'The space-separated ENV/LABEL form allows one pair only and reads ambiguously; use KEY=value.',
  InvalidDefaultArgInFrom: 'An ARG used in FROM without a default gives an empty or invalid image name unless --build-arg is given.',
  FromPlatformFlagConstDisallowed: 'A constant --platform in FROM pins a platform the build cannot change; use $BUILDPLATFORM or a build arg.',
  CopyIgnoredFile: 'The file is excluded by .dockerignore, so COPY/ADD will not find it in the context.',
  RedundantTargetPlatform: '--platform=$TARGETPLATFORM is the default already.',
  MaintainerDeprecated: 'MAINTAINER is deprecated; use LABEL org.opencontainers.image.authors=….',
  NoEmptyContinuation: 'An empty line inside a continued instruction will be an error in a future Dockerfile version.',
  AptCacheNotCleaned: 'apt-get lists left in the layer cost space in every image built on it; remove /var/lib/apt/lists/* in the same RUN.',
  ChmodChownLayer: 'A RUN that only changes owners or modes copies the files into a new layer; use COPY --chmod/--chown instead.',
  CopyBeforeInstall: 'Copying the whole context before installing dependencies reruns the install on every source change; copy the manifests first.',
  LargeContextWithoutIgnore: 'A large build context without .dockerignore is sent and hashed in full on every build.',
  MixedBaseImageTags: 'Several tags of one base image in one Dockerfile: each is pulled and stored separately; use one.',
};

const PLATFORM_ARGS = ['TARGETPLATFORM', 'TARGETOS', 'TARGETARCH', 'TARGETVARIANT', 'BUILDPLATFORM', 'BUILDOS', 'BUILDARCH', 'BUILDVARIANT'];
const PROXY_ARGS = ['HTTP_PROXY', 'HTTPS_PROXY', 'FTP_PROXY', 'NO_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'ftp_proxy', 'no_proxy', 'all_proxy'];
const SECRET = /(?:^|_)(?:apikey|auth|credential|credentials|key|password|passwd|pword|secret|token)(?:_|$)/i;
const SECRET_ALLOWED = /(?:^|_)(?:public|file|path|url|dir|name|id|type|version|length|size)(?:_|$)/i;

/** `$NAME` and `${NAME…}` references in a word, skipping escaped dollars. */
export function variableRefs(word: string, escape = '\\'): string[] {
  const out: string[] = [];
  for (let i = 0; i < word.length; i++) {
    if (word[i] === escape) {
      i++;
      continue;
    }
    if (word[i] !== '$') continue;
    const m = /^\$(?:\{([A-Za-z_][A-Za-z0-9_]*)|([A-Za-z_][A-Za-z0-9_]*))/.exec(word.slice(i));
    if (m) out.push(m[1] ?? m[2]!);
  }
  return out;
}

/** What follows the keyword and its flags on the instruction's first line (for casing rules). */
function keywordAsWritten(i: Instruction): string {
  return i.original.trimStart().split(/\s+/)[0] ?? '';
}

function stageRules(st: Stage, df: Dockerfile, add: (rule: string, line: number, message: string) => void): void {
  const line = (i: Instruction) => i.range.startLine;
  const counts = new Map<string, Instruction[]>();
  const defined = new Set<string>([...PROXY_ARGS, 'PATH']);
  let absWorkdir = false;
  const fromImage = !/^scratch$/i.test(st.from.image) && !df.stages.some((s) => s.name !== undefined && s.name.toLowerCase() === st.from.image.toLowerCase());
  for (const i of st.instructions) {
    if (['cmd', 'entrypoint', 'healthcheck'].includes(i.kind)) counts.set(i.kind, [...(counts.get(i.kind) ?? []), i]);
    if ((i.kind === 'cmd' || i.kind === 'entrypoint') && i.prependShell) {
      add('JSONArgsRecommended', line(i), `JSON arguments recommended for ${i.kind.toUpperCase()} to prevent unintended behavior related to OS signals`);
    }
    if (i.kind === 'workdir') {
      if (!i.value.startsWith('/') && !i.value.startsWith('$') && !absWorkdir) add('WorkdirRelativePath', line(i), `Relative workdir "${i.value}" can have unexpected results if the base image changes`);
      if (i.value.startsWith('/')) absWorkdir = true;
    }
    if (i.kind === 'env' || i.kind === 'label') {
      for (const p of i.pairs) if (p.legacy) add('LegacyKeyValueFormat', line(i), `"${i.kind.toUpperCase()} key=value" should be used instead of legacy "${i.kind.toUpperCase()} key value" format`);
    }
    if (i.kind === 'maintainer') add('MaintainerDeprecated', line(i), 'Maintainer instruction is deprecated in favor of using label');
    // Variables: checked where the builder expands them (not in RUN, CMD, ENTRYPOINT, whose shell does).
    if (!['run', 'cmd', 'entrypoint', 'healthcheck', 'onbuild', 'from'].includes(i.kind)) {
      const rest = i.original.trimStart().slice(keywordAsWritten(i).length);
      for (const v of new Set(variableRefs(rest, df.escapeToken))) {
        if (defined.has(v)) continue;
        // The base image's ENV is not known without pulling it: there, only likely typos are reported.
        const near = suggest(v, [...defined]);
        if (fromImage && !near) continue;
        add('UndefinedVar', line(i), `Usage of undefined variable '$${v}'${near ? ` (did you mean $${near}?)` : ''}`);
      }
    }
    if (i.kind === 'arg') {
      for (const a of i.args) {
        defined.add(a.key);
        if (SECRET.test(a.key) && !SECRET_ALLOWED.test(a.key)) add('SecretsUsedInArgOrEnv', line(i), `Do not use ARG or ENV instructions for sensitive data (ARG "${a.key}")`);
      }
    }
    if (i.kind === 'env') {
      for (const p of i.pairs) {
        defined.add(p.key);
        if (SECRET.test(p.key) && !SECRET_ALLOWED.test(p.key)) add('SecretsUsedInArgOrEnv', line(i), `Do not use ARG or ENV instructions for sensitive data (ENV "${p.key}")`);
      }
    }
    if (i.kind === 'run') practiceRun(i, st, add);
  }
  for (const [kind, list] of counts) {
    for (const i of list.slice(0, -1)) add('MultipleInstructionsDisallowed', line(i), `Multiple ${kind.toUpperCase()} instructions should not be used in the same stage because only the last one will be used`);
  }
}

function practiceRun(i: Extract<Instruction, { kind: 'run' }>, st: Stage, add: (rule: string, line: number, message: string) => void): void {
  const cmd = i.cmd.join(' ') + i.files.map((f) => `\n${f.data}`).join('');
  if (/\bapt-get\s+(?:-\S+\s+)*install\b/.test(cmd) && !/\/var\/lib\/apt\/lists/.test(cmd) && !i.mounts.some((m) => /\/var\/(?:lib|cache)\/apt/.test(m))) {
    add('AptCacheNotCleaned', i.range.startLine, 'apt-get install without "rm -rf /var/lib/apt/lists/*" (or a cache mount) in the same RUN');
  }
  if (i.prependShell && /^\s*(?:chmod|chown)\s[^;&|]*$/.test(cmd)) add('ChmodChownLayer', i.range.startLine, `"${cmd.trim()}" only changes metadata: use COPY --chmod/--chown where the files are copied`);
  if (/\b(?:npm (?:ci|install)|yarn(?: install)?|pnpm install|pip3? install -r|bundle install|go mod download|composer install|cargo fetch)\b/.test(cmd)) {
    const idx = st.instructions.indexOf(i);
    const copyAll = st.instructions.slice(0, idx).find((x) => x.kind === 'copy' && !x.from && x.sources.some((s) => s === '.' || s === './'));
    if (copyAll) add('CopyBeforeInstall', copyAll.range.startLine, `COPY of the whole context before the dependency install at line ${i.range.startLine}: copy the manifests (package.json, requirements.txt, …) first, install, then copy the rest`);
  }
}

export function lint(inp: LintInput): Finding[] {
  const { df } = inp;
  const out: Finding[] = [];
  const add = (rule: string, line: number, message: string) => out.push({ rule, line, message });
  for (const w of df.warnings) add(w.rule, w.line, w.short);
  const globalArgs = new Map(df.globalArgs.flatMap((a) => a.args.map((x) => [x.key, x.value] as const)));
  const names = new Map<string, number>();
  const keywords: Instruction[] = [...df.globalArgs, ...df.stages.flatMap((s) => [s.from, ...s.instructions])];
  const upper = keywords.filter((i) => keywordAsWritten(i) === keywordAsWritten(i).toUpperCase()).length;
  const majorityUpper = upper * 2 >= keywords.length;
  for (const i of keywords) {
    const kw = keywordAsWritten(i);
    if (kw !== (majorityUpper ? kw.toUpperCase() : kw.toLowerCase())) add('ConsistentInstructionCasing', i.range.startLine, `Command '${kw}' should match the case of the command majority (${majorityUpper ? 'uppercase' : 'lowercase'})`);
  }
  const bases = new Map<string, Set<string>>();
  for (const st of df.stages) {
    const f = st.from;
    const line = f.range.startLine;
    if (st.name !== undefined) {
      // As written (the parser lower-cases stage names); a duplicate name is a parse error already.
      const m = /\s(as)\s+(\S+)\s*$/i.exec(f.original);
      const written = m?.[2] ?? st.name;
      if (written !== written.toLowerCase()) add('StageNameCasing', line, `Stage name '${written}' should be lowercase`);
      if (['scratch', 'context'].includes(st.name.toLowerCase())) add('ReservedStageName', line, `'${written}' is reserved and should not be used as a stage name`);
      names.set(st.name.toLowerCase(), line);
      const as = m?.[1];
      const kw = keywordAsWritten(f);
      if (as && (kw === kw.toUpperCase()) !== (as === as.toUpperCase())) add('FromAsCasing', line, `'${as}' and '${kw}' keywords' casing do not match`);
    }
    for (const v of new Set(variableRefs(`${f.image} ${f.platform ?? ''}`, df.escapeToken))) {
      if (!globalArgs.has(v) && !PLATFORM_ARGS.includes(v)) add('UndefinedArgInFrom', line, `FROM argument '${v}' is not declared${suggest(v, [...globalArgs.keys()]) ? ` (did you mean ${suggest(v, [...globalArgs.keys()])}?)` : ''}`);
      else if (variableRefs(f.image, df.escapeToken).includes(v) && globalArgs.has(v) && !globalArgs.get(v)) add('InvalidDefaultArgInFrom', line, `Default value for ARG ${f.image} results in empty or invalid base image name`);
    }
    if (f.platform !== undefined) {
      if (/^\$\{?TARGETPLATFORM\}?$/.test(f.platform)) add('RedundantTargetPlatform', line, 'Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior');
      else if (!f.platform.includes('$')) add('FromPlatformFlagConstDisallowed', line, `FROM --platform flag should not use constant value "${f.platform}"`);
    }
    if (!f.image.includes('$') && !names.has(f.image.toLowerCase()) && f.image !== 'scratch') {
      const repo = f.image.replace(/@.*$/, '').replace(/:[^/:]*$/, '');
      bases.set(repo, new Set([...(bases.get(repo) ?? []), f.image]));
      if (bases.get(repo)!.size === 2) add('MixedBaseImageTags', line, `${repo} is used with two tags or digests (${[...bases.get(repo)!].join(', ')})`);
    }
    stageRules(st, df, add);
    if (inp.ignored) {
      for (const i of st.instructions) {
        if ((i.kind !== 'copy' && i.kind !== 'add') || i.from !== undefined) continue;
        for (const src of i.sources) {
          if (/^[a-z]+:\/\//i.test(src) || src.includes('$') || /[*?[]/.test(src)) continue;
          const p = src.replace(/^\.?\/+/, '');
          if (p !== '' && p !== '.' && inp.ignored(p)) add('CopyIgnoredFile', i.range.startLine, `Attempting to Copy file "${src}" that is excluded by .dockerignore`);
        }
      }
    }
  }
  if (inp.contextFiles !== undefined && inp.contextFiles > 5000 && !inp.hasDockerignore) {
    // The count stops at the threshold (counting a huge context would cost what the warning is about).
    add('LargeContextWithoutIgnore', 0, 'the build context has more than 5000 files and no .dockerignore');
  }
  return out.sort((a, b) => a.line - b.line || a.rule.localeCompare(b.rule));
}
