import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseDockerfile } from '../parser/index.js';
import { formatSarif, formatText, runChecks } from './check.js';
import { RULES, variableRefs } from './lint.js';

const rules = (text: string, extra: { ignored?: (p: string) => boolean; contextFiles?: number; hasDockerignore?: boolean } = {}) =>
  runChecks({ df: parseDockerfile(text), text, ...extra }).findings.map((f) => `${f.line} ${f.rule}`);

// Each rule: a Dockerfile that breaks it (and the line), and one that keeps it.
const CASES: [rule: string, bad: string, line: number, good: string][] = [
  ['StageNameCasing', 'FROM scratch AS Build\n', 1, 'FROM scratch AS build\n'],
  ['FromAsCasing', 'FROM scratch as build\n', 1, 'FROM scratch AS build\n'],
  ['JSONArgsRecommended', 'FROM scratch\nCMD run --fast\n', 2, 'FROM scratch\nCMD ["run", "--fast"]\n'],
  ['UndefinedVar', 'FROM scratch\nARG VERSION=1\nCOPY app-$VERSON /app\n', 3, 'FROM scratch\nARG VERSION=1\nCOPY app-$VERSION /app\n'],
  ['UndefinedArgInFrom', 'FROM alpine:$TAG\n', 1, 'ARG TAG=3\nFROM alpine:$TAG\n'],
  ['WorkdirRelativePath', 'FROM scratch\nWORKDIR app\n', 2, 'FROM scratch\nWORKDIR /srv\nWORKDIR app\n'],
  ['SecretsUsedInArgOrEnv', 'FROM scratch\nARG API_TOKEN\n', 2, 'FROM scratch\nARG TOKEN_FILE\n'],
  ['MultipleInstructionsDisallowed', 'FROM scratch\nCMD ["a"]\nCMD ["b"]\n', 2, 'FROM scratch\nCMD ["b"]\n'],
  ['ConsistentInstructionCasing', 'FROM scratch\nCOPY a /a\ncopy b /b\n', 3, 'FROM scratch\nCOPY a /a\nCOPY b /b\n'],
  ['ReservedStageName', 'FROM scratch AS context\n', 1, 'FROM scratch AS ctx\n'],
  ['LegacyKeyValueFormat', 'FROM scratch\nENV A b\n', 2, 'FROM scratch\nENV A=b\n'],
  ['InvalidDefaultArgInFrom', 'ARG IMAGE\nFROM $IMAGE\n', 2, 'ARG IMAGE=alpine\nFROM $IMAGE\n'],
  ['FromPlatformFlagConstDisallowed', 'FROM --platform=linux/amd64 alpine\n', 1, 'FROM --platform=$BUILDPLATFORM alpine\n'],
  ['RedundantTargetPlatform', 'FROM --platform=$TARGETPLATFORM alpine\n', 1, 'FROM alpine\n'],
  ['MaintainerDeprecated', 'FROM scratch\nMAINTAINER me\n', 2, 'FROM scratch\nLABEL org.opencontainers.image.authors=me\n'],
  ['NoEmptyContinuation', 'FROM scratch\nRUN a \\\n\n  b\n', 4, 'FROM scratch\nRUN a \\\n  b\n'],
  ['AptCacheNotCleaned', 'FROM debian\nRUN apt-get update && apt-get install -y curl\n', 2, 'FROM debian\nRUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*\n'],
  ['ChmodChownLayer', 'FROM scratch\nCOPY run.sh /run.sh\nRUN chmod +x /run.sh\n', 3, 'FROM scratch\nCOPY --chmod=755 run.sh /run.sh\n'],
  ['CopyBeforeInstall', 'FROM node\nCOPY . /app\nRUN npm ci\n', 2, 'FROM node\nCOPY package.json /app/\nRUN npm ci\nCOPY . /app\n'],
  ['MixedBaseImageTags', 'FROM node:18 AS a\nFROM node:20 AS b\n', 2, 'FROM node:20 AS a\nFROM node:20 AS b\n'],
];

for (const [rule, bad, line, good] of CASES) {
  test(`${rule}: reported on line ${line}, and not for the good form`, () => {
    assert.ok(rules(bad).includes(`${line} ${rule}`), `${rule} in ${JSON.stringify(bad)}: ${rules(bad).join(', ')}`);
    assert.not.ok(rules(good).some((r) => r.endsWith(` ${rule}`)), `${rule} not in ${JSON.stringify(good)}: ${rules(good).join(', ')}`);
    assert.ok(RULES[rule], 'every rule has its explanation');
  });
}

test('CopyIgnoredFile and LargeContextWithoutIgnore need the context', () => {
  const df = 'FROM scratch\nCOPY secret.txt /s\nCOPY app /app\n';
  assert.equal(rules(df, { ignored: (p) => p === 'secret.txt', hasDockerignore: true, contextFiles: 10 }), ['2 CopyIgnoredFile']);
  assert.equal(rules(df), []);
  assert.equal(rules(df, { ignored: () => false, contextFiles: 9000, hasDockerignore: false }), ['0 LargeContextWithoutIgnore']);
  // The count given is capped at 5001 (app/check.ts): the message must not print it as the size.
  const large = runChecks({ df: parseDockerfile(df), text: df, ignored: () => false, contextFiles: 5001, hasDockerignore: false }).findings[0]!;
  assert.is(large.message, 'the build context has more than 5000 files and no .dockerignore');
});

test('UndefinedVar: platform args need an ARG in the stage; a base image\'s own ENV is not guessed at, typos are', () => {
  assert.ok(rules('FROM scratch\nCOPY $TARGETARCH/app /app\n').includes('2 UndefinedVar'));
  assert.equal(rules('FROM scratch\nARG TARGETARCH\nCOPY $TARGETARCH/app /app\n'), []);
  assert.equal(rules('FROM debian\nWORKDIR $HOME_DIR\n'), [], 'may come from the image');
  assert.ok(rules('FROM debian\nENV APP_HOME=/app\nWORKDIR $APP_HOM\n').includes('3 UndefinedVar'));
  assert.equal(rules('FROM scratch\nENV A=1\nRUN echo $UNSET\n'), [], 'RUN is expanded by the shell');
  assert.equal(variableRefs('a $B ${C:-x} \\$D $$'), ['B', 'C']);
});

test('DuplicateStageName is a parse error (as in a BuildKit build), not a finding', () => {
  assert.throws(() => parseDockerfile('FROM scratch AS a\nFROM scratch AS A\n'), /duplicate stage name/);
});

test('# check= directives: skip rules, skip all, error=true', () => {
  const bad = 'FROM scratch as Build\nCMD run\n';
  assert.equal(rules(`# check=skip=FromAsCasing,StageNameCasing\n${bad}`), ['3 JSONArgsRecommended']);
  assert.equal(rules(`# check=skip=all\n${bad}`), []);
  const r = runChecks({ df: parseDockerfile(`# check=error=true\n${bad}`), text: bad });
  assert.is(r.error, true);
  assert.match(formatText(r, 'Dockerfile'), /Dockerfile:2 FromAsCasing: 'as' and 'FROM' keywords' casing do not match\n  The 'as' keyword[\s\S]*Check complete, 3 warnings found\.\n$/);
});

test('SARIF output has the fields code-scanning tools require', () => {
  const r = runChecks({ df: parseDockerfile('FROM scratch\nCMD run\n'), text: '' });
  const s = JSON.parse(formatSarif(r, 'app/Dockerfile', '0.1.0')) as { version: string; runs: { tool: { driver: { name: string; rules: { id: string }[] } }; results: { ruleId: string; message: { text: string }; locations: { physicalLocation: { artifactLocation: { uri: string }; region: { startLine: number } } }[] }[] }[] };
  assert.is(s.version, '2.1.0');
  assert.is(s.runs[0]!.tool.driver.name, 'tsbuild');
  assert.equal(s.runs[0]!.tool.driver.rules.map((x) => x.id), ['JSONArgsRecommended']);
  const res = s.runs[0]!.results[0]!;
  assert.is(res.ruleId, 'JSONArgsRecommended');
  assert.ok(res.message.text.length > 0);
  assert.equal(res.locations[0]!.physicalLocation, { artifactLocation: { uri: 'app/Dockerfile' }, region: { startLine: 2 } });
});

test.run();
