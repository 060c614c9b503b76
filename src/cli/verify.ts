/**
 * `tsbuild verify IMAGE`: rebuilds the image from its recorded inputs (context, Dockerfile, target,
 * build args, SOURCE_DATE_EPOCH) with --no-cache and reports whether the manifest digest matches.
 */
import fs from 'node:fs';
import { NotFoundError, TsbuildError, UsageError } from '../errors/index.js';
import { parseArgs, flagStr, type FlagSpec, type Parsed, rootFlag, helpFlag } from './args.js';
import { buildCommand, buildFlags, readInputs } from './build.js';
import { openStore, storeRoot } from './store.js';

export const verifyFlags: FlagSpec[] = [
  rootFlag,
  { name: 'progress', type: 'string', arg: 'auto|tty|plain', help: 'progress output' },
  helpFlag,
];

export async function verifyCommand(p: Parsed, signal: AbortSignal): Promise<number> {
  const ref = p.positional[0];
  if (!ref) throw new UsageError('verify needs an image: tsbuild verify IMAGE');
  const rootFlag = flagStr(p, 'root');
  const s = await openStore(storeRoot(rootFlag));
  const img = s.content.resolve(ref);
  const inputs = readInputs(s.root, img.manifestDigest);
  if (!inputs) throw new NotFoundError(`no recorded build inputs for ${ref}: only images built by tsbuild on this store can be verified`, 'NO_BUILD_INPUTS');
  if (!fs.existsSync(inputs.dockerfile)) throw new TsbuildError('VERIFY_INPUT_GONE', `the Dockerfile ${inputs.dockerfile} used to build ${ref} is gone`);
  const argv = ['--no-cache', '--progress', flagStr(p, 'progress') ?? 'auto', '-f', inputs.dockerfile, '--network', inputs.network];
  if (inputs.target) argv.push('--target', inputs.target);
  for (const [k, v] of Object.entries(inputs.buildArgs)) argv.push('--build-arg', `${k}=${v}`);
  if (rootFlag) argv.push('--root', rootFlag);
  argv.push(inputs.context);
  const saved = process.env.SOURCE_DATE_EPOCH;
  if (inputs.sourceDateEpoch !== undefined) process.env.SOURCE_DATE_EPOCH = inputs.sourceDateEpoch;
  else delete process.env.SOURCE_DATE_EPOCH;
  let out;
  try {
    out = await buildCommand(parseArgs(argv, buildFlags), signal);
  } finally {
    if (saved === undefined) delete process.env.SOURCE_DATE_EPOCH;
    else process.env.SOURCE_DATE_EPOCH = saved;
  }
  const same = out.manifestDigest === img.manifestDigest;
  process.stdout.write(
    same
      ? `verified: ${ref} rebuilds to the same digest ${img.manifestDigest}\n`
      : `MISMATCH: ${ref} is ${img.manifestDigest}, a rebuild gives ${out.manifestDigest} (the build is not reproducible, or its inputs changed)\n`,
  );
  return same ? 0 : 1;
}
