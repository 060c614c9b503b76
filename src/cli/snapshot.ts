/**
 * The entry of the CLI's V8 startup snapshot (scripts/bundle.mjs makes dist/bundle/cli.blob from it;
 * bin/tsbuild runs `node --snapshot-blob cli.blob -- ARGS`). The snapshot holds every module already
 * loaded and compiled, so a command starts without reading or compiling the 750 KB bundle: about
 * 20 ms of every command (docs/performance.md).
 *
 * Building the snapshot runs only this file's top level; nothing of the environment (pid, env, cwd,
 * time) may be read there, since it would be frozen into every later run. The main function runs in
 * each process, after deserialization.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import v8 from 'node:v8';
import { checkDockerfile } from '../app/index.js';
import { main } from './main.js';
import { rootlessMain } from './rootless.js';
import { snapshotBlob, singleExecutable, startedAsSingleExecutable } from './startup.js';

const HELP_ONLY = ['', '--help', '-h', 'help', '--version', 'version'];

/**
 * Where this process's code "is": the bundle is built with import.meta.url replaced by this global,
 * pointing at dist/bundle/cli.mjs beside the blob, so paths resolved from it (the helper, the
 * seccomp profiles) are the same as without the snapshot, wherever the tree was moved.
 */
function locate(): void {
  const blob = snapshotBlob();
  // No --snapshot-blob: the single executable, which holds the snapshot and sits beside cli.mjs.
  if (!blob) startedAsSingleExecutable();
  (globalThis as { __tsbuildModuleUrl?: string }).__tsbuildModuleUrl = pathToFileURL(path.join(path.dirname(path.resolve(blob ?? process.execPath)), 'cli.mjs')).href;
}

/**
 * A Dockerfile of most instructions, read and checked while the snapshot is made: V8 keeps the
 * bytecode of every function that ran, so the parser and the checks that every build runs start
 * compiled (a no-change build compiled them first). Pure: no file, no environment.
 */
const WARM_UP = [
  '# syntax=docker/dockerfile:1',
  'ARG BASE=scratch',
  'FROM ${BASE} AS build',
  'ENV A=1 B="two words"',
  'LABEL org.example=x',
  'WORKDIR /src',
  'COPY --chown=1:1 --chmod=644 a b ./',
  `ADD --checksum=sha256:${'0'.repeat(64)} https://example.invalid/f /f`,
  'RUN --mount=type=cache,target=/c --network=none echo "$A" && \\',
  '    echo done',
  'RUN <<EOT',
  'echo heredoc',
  'EOT',
  'USER 1:1',
  'FROM build',
  'COPY --from=build /src /src',
  'EXPOSE 80/tcp',
  'VOLUME ["/v"]',
  'HEALTHCHECK --interval=30s CMD ["true"]',
  'SHELL ["/bin/sh", "-c"]',
  'STOPSIGNAL SIGTERM',
  'ONBUILD RUN true',
  'ENTRYPOINT ["/bin/sh"]',
  'CMD ["-c", "true"]',
].join('\n');

if (v8.startupSnapshot?.isBuildingSnapshot()) {
  checkDockerfile({ dockerfile: '/Dockerfile', dockerfileText: WARM_UP });
  // The first URL a process parses cost `run` 2.5 ms (the helper's path, from import.meta.url):
  // parsed once here, its code is in the snapshot. An absolute path: no cwd is read.
  fileURLToPath(pathToFileURL('/warm/up.mjs').href);
  // Node loads and compiles two of its own modules on first use: fs.promises (every layer and blob
  // write) and the recursive remover (every temporary directory). Loaded here, they are in the
  // snapshot: 1.5 and 0.4 ms of a one-file COPY's build. The path does not exist: nothing is read.
  void fs.promises;
  fs.rmSync('/nonexistent/tsbuild-snapshot-warm-up', { recursive: true, force: true });
  v8.startupSnapshot.setDeserializeMainFunction(() => {
    locate();
    // Node gives a snapshot's main [node, ...args] (the `--` before them is consumed); `--` is put
    // back as argv[1], so the CLI's way of starting itself again (execPath, execArgv, argv[1]:
    // detached monitors, exec, the user namespace) gives `node --snapshot-blob BLOB -- ARGS`. A
    // single executable gives [exe, exe, ...args] and starts itself as `exe ARGS` (startup.ts).
    if (!singleExecutable()) process.argv.splice(1, 0, '--');
    const argv = process.argv.slice(2);
    const rootless = process.getuid?.() !== 0 && !HELP_ONLY.includes(argv[0] ?? '');
    (rootless ? rootlessMain : main)(argv).then(
      (code) => process.exit(code),
      (e: unknown) => {
        process.stderr.write(`ERROR: ${e instanceof Error && e.stack ? e.stack : String(e)}\n`);
        process.exit(1);
      },
    );
  });
}
