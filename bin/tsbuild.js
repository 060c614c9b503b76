#!/usr/bin/env node
import { main } from '../dist/bundle/cli.mjs';

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`ERROR: ${e && e.stack ? e.stack : e}\n`);
    process.exit(1);
  },
);
