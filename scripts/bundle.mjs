#!/usr/bin/env node
// Bundles the compiled CLI (dist/cli/index.js and every module it imports) into one ES module,
// dist/bundle/cli.mjs, which bin/tsbuild.js loads: resolving and loading ~100 module files was a
// quarter of every command's start-up (run --rm true: 320 -> 250 ms on a 2-core VM, medians of 5).
// npm packages stay external (ky is loaded only when a command talks HTTP). The bundle sits two
// levels below the repository, like every dist/<module>/ file, so paths resolved from
// import.meta.url (the helper, the seccomp profiles) mean the same in both.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// The non-root entry is bundled apart: it only finds the user's namespace and runs the CLI in it.
for (const [entry, out] of [['dist/cli/index.js', 'dist/bundle/cli.mjs'], ['dist/cli/rootless.js', 'dist/bundle/rootless.mjs']]) await build({
  entryPoints: [path.join(root, entry)],
  outfile: path.join(root, out),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: 'linked',
  logLevel: 'warning',
});
