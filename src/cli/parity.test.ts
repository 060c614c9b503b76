import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cliPath, repoRoot } from '../testutil/index.js';

const rows = fs.readFileSync(path.join(repoRoot, 'docs/docker-parity.md'), 'utf8').split('\n')
  .map((l) => /^\| [^|]+ \| `([^`]+)` \| `(--[a-z-]+)` \| (yes|not yet|n\/a) \|/.exec(l))
  .filter((m): m is RegExpExecArray => m !== null);
const help = new Map<string, string>();
const helpOf = (cmd: string) => {
  if (!help.has(cmd)) help.set(cmd, spawnSync(cliPath, [cmd, '--help'], { encoding: 'utf8' }).stdout);
  return help.get(cmd)!;
};

test('docs/docker-parity.md agrees with every command\'s --help', () => {
  assert.ok(rows.length > 60, `the table has its rows (${rows.length})`);
  for (const [, cmd, flag, support] of rows) {
    const has = new RegExp(`(^|[\\s,])${flag}(?![a-z-])`, 'm').test(helpOf(cmd!));
    if (support === 'yes') assert.ok(has, `${cmd} ${flag} is "yes" in the table but not in tsbuild ${cmd} --help`);
    else assert.not.ok(has, `${cmd} ${flag} is "${support}" in the table but tsbuild ${cmd} --help has it: update docs/docker-parity.md`);
  }
});

test('a Docker build flag tsbuild does not have says what to do instead, never "unknown flag"', () => {
  const missing = rows.filter(([, cmd, , support]) => cmd === 'build' && support !== 'yes');
  assert.ok(missing.length > 5);
  for (const [, , flag] of missing) {
    const r = spawnSync(cliPath, ['build', `${flag}=x`, '.'], { encoding: 'utf8', env: { ...process.env, TSBUILD_ROOT: '/nonexistent-tsbuild-parity' } });
    assert.is(r.status, 2, `${flag}: ${r.stderr}`);
    assert.match(r.stderr, `ERROR: ${flag}: `, `${flag}: ${r.stderr}`);
    assert.not.match(r.stderr, /unknown flag/);
  }
});

test('Docker\'s accepted build flags: values that mean something tsbuild does not do are refused', () => {
  const refuse = (args: string[], re: RegExp) => {
    const r = spawnSync(cliPath, ['build', ...args, '.'], { encoding: 'utf8', env: { ...process.env, TSBUILD_ROOT: '/nonexistent-tsbuild-parity' } });
    assert.is(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
  };
  refuse(['--provenance=mode=max'], /--provenance=mode=max: tsbuild does not attach provenance attestations yet; only --provenance=false/);
  refuse(['--sbom=true'], /only --sbom=false/);
  refuse(['--isolation', 'hyperv'], /--isolation hyperv: Linux builds have only the default isolation/);
  refuse(['--disable-content-trust=false'], /no content trust/);
  for (const cmd of ['pull', 'push']) {
    const r = spawnSync(cliPath, [cmd, '--disable-content-trust=false', 'localhost:5000/x'], { encoding: 'utf8', env: { ...process.env, TSBUILD_ROOT: '/nonexistent-tsbuild-parity' } });
    assert.is(r.status, 2, r.stderr);
    assert.match(r.stderr, /--disable-content-trust=false: tsbuild has no content trust/);
  }
});

test.run();
