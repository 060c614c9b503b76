#!/usr/bin/env node
// Not root: the command runs inside the user's own namespace (docs/rootless.md); the light entry gets
// there without loading the whole CLI twice.
const rootless = process.getuid && process.getuid() !== 0 && !['', '--help', '-h', 'help', '--version', 'version'].includes(process.argv[2] ?? '');
const run = rootless
  ? (await import('../dist/bundle/rootless.mjs')).rootlessMain
  : (await import('../dist/bundle/cli.mjs')).main;

run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`ERROR: ${e && e.stack ? e.stack : e}\n`);
    process.exit(1);
  },
);
