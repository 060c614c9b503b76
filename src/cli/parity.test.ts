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

test.run();
