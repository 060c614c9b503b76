/** Parser rules beyond the conformance corpus, and a fuzz test over mutations of the corpus. */
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { conformanceDir } from '../testutil/index.js';
import { DockerfileSyntaxError } from '../errors/index.js';
import { parseAST, dumpAST } from './ast.js';
import { parseDockerfile } from './instructions.js';
import { IgnoreMatcher, parseDockerignore } from './dockerignore.js';

const first = (text: string) => parseDockerfile(text).stages[0]!.instructions[0]!;

test('CRLF and LF files parse identically; a BOM is ignored', () => {
  const lf = 'FROM x\nRUN echo a \\\n  b\nENV A=1\n';
  assert.is(dumpAST(parseAST(lf.replace(/\n/g, '\r\n'))), dumpAST(parseAST(lf)));
  assert.is(dumpAST(parseAST('\ufeff' + lf)), dumpAST(parseAST(lf)));
});

test('keywords are case-insensitive; only ARG may precede FROM', () => {
  assert.is(parseDockerfile('from x\nrun true\n').stages[0]!.instructions[0]!.kind, 'run');
  assert.throws(() => parseDockerfile('RUN x\nFROM y\n'), (e: unknown) => e instanceof DockerfileSyntaxError && e.startLine === 1 && /only ARG may come before FROM/.test(e.message));
  assert.is(parseDockerfile('ARG V=1\nFROM x:$V\n').globalArgs.length, 1);
});

test('generic flag rules: unknown, duplicate, bool values, missing values, list flags', () => {
  const bad: [string, RegExp][] = [
    ['COPY --nope a b', /unknown flag: nope/],
    ['COPY --from=a --from=b x y', /duplicate flag specified: from/],
    ['COPY --link=maybe a b', /expecting boolean value for flag link, not: maybe/],
    ['COPY --link= a b', /missing a value on flag: link/],
    ['COPY --from a b', /missing a value on flag: from/],
    ['COPY --chmdo=755 a b', /unknown flag: chmdo \(did you mean chmod\?\)/],
    ['FOO bar', /unknown instruction: FOO/],
    ['RUN --device=x true', /device feature is only supported in Dockerfile frontend 1.14.0-labs/],
  ];
  for (const [line, re] of bad) assert.throws(() => parseDockerfile(`FROM x\n${line}\n`), (e: unknown) => e instanceof DockerfileSyntaxError && re.test(e.message) && e.startLine === 2, line);
  const c = first('FROM x\nCOPY --link --exclude=*.md --exclude=*.txt --chown=1:2 a b /d/\n');
  assert.ok(c.kind === 'copy' && c.link && c.excludes.length === 2 && c.chown === '1:2' && c.dest === '/d/');
  const l = first('FROM x\nCOPY --link=FALSE a b\n');
  assert.ok(l.kind === 'copy' && !l.link);
});

test('FROM: AS names are lowercased and validated; wrong word counts fail', () => {
  assert.is(parseDockerfile('FROM x AS Build\n').stages[0]!.name, 'build');
  assert.throws(() => parseDockerfile('FROM x AS 1st\n'), /invalid name for build stage/);
  assert.throws(() => parseDockerfile('FROM x y\n'), /FROM requires either one or three arguments/);
  assert.throws(() => parseDockerfile('FROM x AS a\nFROM y AS a\n'), /duplicate stage name "a"/);
});

test('SHELL must be JSON; HEALTHCHECK NONE takes no arguments; ONBUILD forbids chaining', () => {
  assert.throws(() => parseDockerfile('FROM x\nSHELL /bin/sh -c\n'), /SHELL requires the arguments to be in JSON form/);
  assert.throws(() => parseDockerfile('FROM x\nHEALTHCHECK NONE extra\n'), /HEALTHCHECK NONE takes no arguments/);
  assert.throws(() => parseDockerfile('FROM x\nONBUILD ONBUILD RUN x\n'), /Chaining ONBUILD/);
  assert.throws(() => parseDockerfile('FROM x\nONBUILD FROM y\n'), /isn't allowed as an ONBUILD trigger/);
  const hc = first('FROM x\nHEALTHCHECK --interval=5s CMD ["curl", "-f", "x"]\n');
  assert.ok(hc.kind === 'healthcheck' && hc.type === 'CMD' && !hc.prependShell && hc.interval === '5s');
});

test('heredocs: unterminated is an error; not a destination; ONBUILD keeps the body', () => {
  assert.throws(() => parseDockerfile('FROM x\nCOPY <<EOF /a\nbody\n'), (e: unknown) => e instanceof DockerfileSyntaxError && /unterminated heredoc/.test(e.message));
  assert.throws(() => parseDockerfile('FROM x\nCOPY a <<EOF\nEOF\n'), /cannot accept a heredoc as a destination/);
  const ob = first('FROM x\nONBUILD RUN <<EOF\necho hi\nEOF\n');
  assert.ok(ob.kind === 'onbuild' && ob.expression === 'RUN <<EOF\necho hi\nEOF', ob.kind === 'onbuild' ? ob.expression : '');
  const r = first('FROM x\nRUN 3<<EOF cat /dev/fd/3\nfd3\nEOF\n');
  assert.ok(r.kind === 'run' && r.files[0]!.fileDescriptor === 3);
});

test('.dockerignore: exceptions, **, leading /, comments, directory contents', () => {
  const m = new IgnoreMatcher(parseDockerignore('# comment\n/node_modules\n**/*.log\n!keep.log\nbuild/\ndocs/**/*.tmp\n'));
  assert.ok(m.matches('node_modules'));
  assert.ok(m.matches('node_modules/x/y.js'), 'a matched directory excludes its contents');
  assert.ok(m.matches('a/b/c.log') && m.matches('c.log'));
  assert.not.ok(m.matches('keep.log'));
  assert.ok(m.matches('build/out.o'));
  assert.ok(m.matches('docs/a/b/c.tmp') && m.matches('docs/c.tmp'));
  assert.not.ok(m.matches('src/main.c'));
  assert.throws(() => parseDockerignore('!\n'), /illegal exclusion pattern/);
});

function* corpus(): Generator<string> {
  const dir = path.join(conformanceDir, 'testfiles');
  for (const c of fs.readdirSync(dir)) yield fs.readFileSync(path.join(dir, c, 'Dockerfile'), 'utf8');
  yield fs.readFileSync(path.join(conformanceDir, 'heredoc/extracts-heredoc.Dockerfile'), 'utf8');
}

test('fuzz: random mutations of the corpus either parse or throw DockerfileSyntaxError, quickly', () => {
  let seed = 12345;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const alphabet = ['\\', '`', '"', "'", '\n', '\r\n', ' ', '\t', '[', ']', '{', '}', '$', '<<', '<<-', 'EOF', '#', '--', '=', ',', '\0', 'é', '\ufeff', 'FROM ', 'RUN ', 'ONBUILD ', 'COPY '];
  const texts = [...corpus()];
  let parsed = 0;
  let rejected = 0;
  for (let i = 0; i < 3000; i++) {
    let t = texts[rand(texts.length)]!;
    for (let k = 0, n = 1 + rand(6); k < n; k++) {
      const pos = rand(t.length + 1);
      const op = rand(3);
      if (op === 0) t = t.slice(0, pos) + alphabet[rand(alphabet.length)] + t.slice(pos);
      else if (op === 1) t = t.slice(0, pos) + t.slice(pos + 1 + rand(8));
      else t = t.slice(0, pos) + t.slice(rand(t.length), rand(t.length)) + t.slice(pos);
    }
    const start = Date.now();
    try {
      parseDockerfile(t);
      parsed++;
    } catch (e) {
      if (!(e instanceof DockerfileSyntaxError)) throw new Error(`mutation ${i} threw ${String(e)} for:\n${JSON.stringify(t)}`);
      rejected++;
    }
    assert.ok(Date.now() - start < 1000, `mutation ${i} took too long`);
  }
  console.log(`  fuzz: 3000 mutations, ${parsed} parsed, ${rejected} rejected with DockerfileSyntaxError`);
});

test.run();
