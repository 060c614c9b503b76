#!/usr/bin/env node
// Bundles the compiled CLI (dist/cli/index.js and every module it imports) into one ES module,
// dist/bundle/cli.mjs, which bin/tsbuild.js loads: resolving and loading ~100 module files was a
// quarter of every command's start-up (run --rm true: 320 -> 250 ms on a 2-core VM, medians of 5).
// npm packages stay external (ky is loaded only when a command talks HTTP). The bundle sits two
// levels below the repository, like every dist/<module>/ file, so paths resolved from
// import.meta.url (the helper, the seccomp profiles) mean the same in both.
//
// Then a V8 startup snapshot of the whole CLI, dist/bundle/cli.blob, which bin/tsbuild starts
// (`node --snapshot-blob`): every module already loaded and compiled, about 20 ms off every command
// (docs/performance.md). A snapshot is made from one CommonJS script with everything in it, npm
// packages too; import.meta.url becomes a global the snapshot's main sets from the blob's place.
// It only works with the node binary that made it: cli.blob.nodebin names that binary, and
// cli.blob.stamp (its mtime) and cli.blob.node (its identity) describe it; bin/tsbuild falls back
// to bin/tsbuild.js when it differs. The same snapshot also goes into a single executable,
// dist/bundle/tsbuild-sea (singleExecutable below), which bin/tsbuild prefers. TSBUILD_NO_SNAPSHOT=1
// skips both (a Node without --build-snapshot).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const common = { bundle: true, platform: 'node', target: 'node20', logLevel: 'warning' };
// The non-root entry is bundled apart: it only finds the user's namespace and runs the CLI in it.
for (const [entry, out] of [['dist/cli/index.js', 'dist/bundle/cli.mjs'], ['dist/cli/rootless.js', 'dist/bundle/rootless.mjs']]) await build({
  ...common,
  entryPoints: [path.join(root, entry)],
  outfile: path.join(root, out),
  format: 'esm',
  packages: 'external',
  sourcemap: 'linked',
});

const blob = path.join(root, 'dist/bundle/cli.blob');
for (const f of [blob, `${blob}.node`, `${blob}.nodebin`, `${blob}.stamp`, path.join(root, 'dist/bundle/tsbuild-sea')]) fs.rmSync(f, { force: true });
if (process.env.TSBUILD_NO_SNAPSHOT !== '1') {
  const script = path.join(root, 'dist/bundle/snapshot.cjs');
  await build({
    ...common,
    entryPoints: [path.join(root, 'dist/cli/snapshot.js')],
    outfile: script,
    format: 'cjs',
    define: { 'import.meta.url': 'globalThis.__tsbuildModuleUrl' },
    // A script in a snapshot has no dynamic import(): the lazy `import('node:http')` and the like
    // become require() calls.
    supported: { 'dynamic-import': false },
  });
  // One character beyond ASCII anywhere in a script (an emoji in a dependency's doc comment, `µs` in
  // a regular expression) makes V8 keep all of its source as UTF-16: twice the bytes in the snapshot
  // and 1.3 MB more to deserialize at every start (about 4 ms). Each such character becomes its
  // \u escape (UTF-16 code units), which means the same in comments, strings, templates, regular
  // expressions and identifiers; String.raw would see the difference, and the bundle has none there.
  const source = memoizeToESM(fs.readFileSync(script, 'utf8')).replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (/[^\w.$]import\(/.test(source)) throw new Error(`${script} still has a dynamic import(), which fails in a startup snapshot`);
  fs.writeFileSync(script, source + compileAhead(source));
  // --no-warnings: Node says child_process, readline and dgram are "not fully verified" in snapshot
  // builder scripts; the whole test suite runs through the snapshot (testutil's cli).
  const snap = () => spawnSync(process.execPath, ['--no-warnings', '--snapshot-blob', blob, '--build-snapshot', script], { cwd: root, encoding: 'utf8' });
  let r = snap();
  if (r.status !== 0) {
    // The compile-ahead uses a V8 testing intrinsic: a node where it fails still gets a snapshot.
    process.stderr.write(`startup snapshot: made again without compiling ahead (${(r.stderr || String(r.error)).trim().split('\n').pop()})\n`);
    fs.writeFileSync(script, source);
    r = snap();
  }
  if (r.status !== 0) {
    process.stderr.write(`startup snapshot not made (bin/tsbuild will load the bundle instead): ${r.stderr || r.error}\n`);
    fs.rmSync(blob, { force: true });
  } else {
    // What bin/tsbuild compares with the node it would run, with the shell's own tests first (a `stat`
    // process and a `$(command -v node)` subshell cost every command 2.5 ms): `-ef` the binary this
    // link names (the same file), and neither `-nt` nor `-ot` the stamp, which has its mtime to the
    // nanosecond (an upgraded node comes with its own package's time). A copy that lost the stamp's
    // time (cp -r) is checked against the record, as `stat -L -c %d:%i:%s:%Y` would print it.
    fs.symlinkSync(process.execPath, `${blob}.nodebin`);
    spawnSync('touch', ['-r', process.execPath, `${blob}.stamp`]);
    const st = fs.statSync(process.execPath);
    fs.writeFileSync(`${blob}.node`, `${process.execPath} ${st.dev}:${st.ino}:${st.size}:${Math.floor(st.mtimeMs / 1000)}\n`);
    singleExecutable(script);
  }
}

/**
 * The same snapshot as a single executable application: a copy of this node binary with the
 * snapshot in an ELF section of its own (postject), dist/bundle/tsbuild-sea, which bin/tsbuild
 * starts by default. Node reads a `--snapshot-blob` file into memory and copies it again before
 * deserializing it; a single executable's snapshot is read where the binary is mapped. That saves
 * the two copies' fresh memory: 25 ms of every start where malloc gets no huge pages, 0-20 ms where
 * it does (`tsbuild --version` 100 -> 81 ms at one moment, level at another; hyperfine,
 * docs/performance.md), and it is never slower. It carries its own
 * node, the one the native addons were built against, so no check of the node on PATH is needed.
 * A failure leaves the blob, which bin/tsbuild then starts as before.
 */
function singleExecutable(script) {
  const sea = path.join(root, 'dist/bundle/tsbuild-sea');
  const tmp = fs.mkdtempSync(path.join(root, 'dist/bundle/.sea-'));
  try {
    const prep = path.join(tmp, 'prep.blob');
    const config = path.join(tmp, 'sea-config.json');
    fs.writeFileSync(config, JSON.stringify({ main: script, output: prep, useSnapshot: true, disableExperimentalSEAWarning: true }));
    const r = spawnSync(process.execPath, ['--no-warnings', '--experimental-sea-config', config], { cwd: root, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`node --experimental-sea-config: ${r.stderr || r.error}`);
    const exe = path.join(tmp, 'tsbuild-sea');
    fs.copyFileSync(process.execPath, exe);
    // The fuse is Node's own marker for "a blob is injected"; the section name is what Node looks up.
    // postject's command, whose output (LIEF's warnings about note sections it leaves alone) is shown
    // only when it fails.
    const postject = createRequire(import.meta.url).resolve('postject/dist/cli.js');
    const p = spawnSync(process.execPath, [postject, exe, 'NODE_SEA_BLOB', prep, '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'], { encoding: 'utf8' });
    if (p.status !== 0) throw new Error(`postject: ${p.stdout}${p.stderr}${p.error ?? ''}`);
    fs.chmodSync(exe, 0o755);
    fs.renameSync(exe, sea);
  } catch (e) {
    process.stderr.write(`single executable not made (bin/tsbuild will start Node from dist/bundle/cli.blob instead): ${e instanceof Error ? e.message : String(e)}\n`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * esbuild's CommonJS output gives every module that imports a CommonJS one (each `import fs from
 * 'node:fs'`) its own namespace object from `__toESM`: a getter and its closure per export of the
 * module. node:fs was copied 96 times and node:path 86, 249 copies in all: 9,000 getters, 640 KB of
 * the snapshot's context and 20 ms of deserializing it at every start (31.7 -> 11.4 ms,
 * --profile-deserialization; `--version` 113 -> 98 ms of CPU, perf stat, docs/performance.md). Each
 * importer now gets the one namespace made for that module object: its getters read the module
 * live, as before, and no importer can change it. Fails the build if esbuild's helper is not found,
 * so that a new esbuild cannot take the saving away unseen.
 */
function memoizeToESM(source) {
  const helper = /^var __toESM = \(/m;
  if ((source.match(new RegExp(helper.source, 'gm')) ?? []).length !== 1) {
    throw new Error("scripts/bundle.mjs: esbuild's `var __toESM = (` helper is not in the snapshot script exactly once; update memoizeToESM for this esbuild");
  }
  const memo = [
    'var __toESMMemo = [new WeakMap(), new WeakMap()];',
    'var __toESM = (mod, isNodeMode) => {',
    '  if (mod == null || (typeof mod !== "object" && typeof mod !== "function")) return __toESMFresh(mod, isNodeMode);',
    '  const memo = __toESMMemo[isNodeMode ? 1 : 0];',
    '  let ns = memo.get(mod);',
    '  if (ns === undefined) memo.set(mod, (ns = __toESMFresh(mod, isNodeMode)));',
    '  return ns;',
    '};',
  ].join('\n');
  // The helpers are defined before any module's code runs, so the memo may call the original by name.
  return source.replace(helper, 'var __toESMFresh = (').replace(/^"use strict";\n/, (s) => `${s}${memo}\n`);
}

/**
 * V8 compiles a function when it is first called, and keeps in a startup snapshot the bytecode of
 * the functions that ran while it was made. Every other function was compiled again by every command
 * that called it: parsing and bytecode generation were 14 % of `run --rm IMAGE true`'s CPU samples
 * (`perf record`), about 20 ms. This appends to the snapshot script a step, run only while the
 * snapshot is made, that compiles every top-level function and every method of every top-level
 * class without calling any of them, through V8's `%PrepareFunctionForOptimization` (the natives
 * syntax is switched on only to create the one function that uses it, and off again before the
 * snapshot is taken, whose flags must match a plain start). Measured (docs/performance.md): the blob
 * +1.1 MB, `run --rm` 120 -> 109 ms, a no-change build 84 -> 77 ms, `--version` unchanged.
 * Functions nested in others are still compiled at first use. The names come from esbuild's output,
 * where a top-level declaration starts its line; one that is not a function is skipped.
 */
function compileAhead(source) {
  const names = new Set();
  for (const m of source.matchAll(/^(?:async )?function\*? ?([\w$]+)\(|^(?:var|let|const) ([\w$]+) = (?:class\b|(?:async )?(?:function\b|\(|[\w$]+ =>))|^class ([\w$]+)/gm)) names.add(m[1] ?? m[2] ?? m[3]);
  // The CLI has about 1,100: far fewer means esbuild's output changed shape and the saving is gone.
  if (names.size < 500) throw new Error(`scripts/bundle.mjs: compileAhead found ${names.size} top-level functions in the snapshot script; update its pattern for this esbuild`);
  const refs = [...names].map((n) => `typeof ${n} === "function" ? ${n} : undefined`);
  // The list is evaluated in the script's own scope, where the names are; the step's own bindings
  // would shadow a top-level function of the same name.
  return `
;((fns) => {
  const v8 = require("node:v8");
  if (!v8.startupSnapshot?.isBuildingSnapshot()) return;
  let prepare;
  v8.setFlagsFromString("--allow-natives-syntax");
  try {
    prepare = new Function("f", "%PrepareFunctionForOptimization(f)");
  } finally {
    v8.setFlagsFromString("--no-allow-natives-syntax");
  }
  const seen = new Set();
  const one = (f) => {
    if (typeof f !== "function" || seen.has(f)) return;
    seen.add(f);
    // Only the script's own functions: the intrinsic aborts on a bound function or a proxy, and a
    // built-in has nothing to compile.
    if (/\\[native code\\] *\\}$/.test(Function.prototype.toString.call(f))) return;
    prepare(f);
  };
  for (const f of fns) {
    one(f);
    if (typeof f !== "function" || !/^class\\b/.test(Function.prototype.toString.call(f))) continue;
    for (const o of [f, f.prototype]) {
      for (const k of Object.getOwnPropertyNames(o)) {
        const d = Object.getOwnPropertyDescriptor(o, k);
        for (const g of [d.value, d.get, d.set]) one(g);
      }
    }
  }
})([
${refs.map((r) => `  ${r},`).join('\n')}
]);
`;
}
