/** --format through the CLI: Docker's templates on image and container inspect, and listings. */
import os from 'node:os';
import * as assert from 'uvu/assert';
import { cli, e2eHarness } from '../testutil/index.js';

const { it, root, ctx, test } = e2eHarness('format');
const tsb = (args: string[]) => cli(args, { root });

it('inspect has the fields Docker templates use, zero when unset; listings take pipelines and functions', async () => {
  const b = await tsb(['build', '-t', 'fmt-img', '--label', 'team=core', ctx('LABEL tier=web\n')]);
  assert.is(b.code, 0, b.stderr);
  let r = await tsb(['inspect', '-f', '{{.Config.User}}|{{.Config.Entrypoint}}|{{len .RootFS.Layers}}|{{index .Config.Labels "team"}}|{{.Config.Labels}}|{{.Config.StopSignal}}|{{json .Config.Volumes}}|{{.Os}}/{{.Architecture}}', 'fmt-img']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^\|\[\]\|[1-9]\d*\|core\|map\[team:core tier:web\]\|\|null\|linux\/\w+\n$/);
  r = await tsb(['inspect', 'fmt-img']);
  const [img] = JSON.parse(r.stdout) as { Config: Record<string, unknown>; RootFS: { Type: string; Layers: string[] } }[];
  assert.is(img!.Config.Entrypoint, null, 'an unset list is null in JSON, as Docker prints it');
  assert.is(img!.Config.User, '');
  assert.is(img!.RootFS.Type, 'layers');
  // RepoDigests: each repository at the stored manifest's digest (what `docker pull repo@digest` takes).
  r = await tsb(['inspect', '-f', '{{json .RepoDigests}}', 'fmt-img']);
  assert.match(r.stdout, /^\["fmt-img@sha256:[0-9a-f]{64}"\]\n$/, r.stderr);

  assert.is((await tsb(['run', '--name', 'fmt-c', 'fmt-img', 'true'])).code, 0);
  try {
    r = await tsb(['inspect', '--type', 'container', '-f', '{{.State.Status}} {{.State.ExitCode}} {{.Config.Labels.tier}} {{if .Config.Tty}}tty{{else}}notty{{end}} {{range $i, $a := .Config.Cmd}}{{if $i}},{{end}}{{$a}}{{end}}', 'fmt-c']);
    assert.is(r.stdout, 'exited 0 web notty true\n', r.stderr);
    // No healthcheck: State.Health is Go's nil pointer, so scripts' `{{if .State.Health}}` guard works.
    r = await tsb(['inspect', '-f', '{{.State.Health}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}', 'fmt-c']);
    assert.is(r.stdout, '<nil> none\n', r.stderr);
    r = await tsb(['ps', '-a', '--format', '{{.Names | upper}} {{printf "%.4s" .Status}}']);
    assert.is(r.stdout, 'FMT-C Exit\n', r.stderr);
    r = await tsb(['images', '--format', '{{if eq .Repository "fmt-img"}}{{.Repository}}:{{.Tag}}{{end}}']);
    assert.match(r.stdout, /^fmt-img:latest$/m);
    // `images REPO[:TAG]` lists only that repository; -a is the same list (no intermediate images).
    assert.is((await tsb(['tag', 'fmt-img', 'fmt-other:2'])).code, 0);
    assert.match((await tsb(['images', 'fmt-img'])).stdout, /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE\nfmt-img\s+latest\s/);
    assert.not.match((await tsb(['images', 'fmt-img'])).stdout, /fmt-other/);
    assert.match((await tsb(['images', 'fmt-other:2'])).stdout, /^fmt-other\s+2\s/m);
    assert.is((await tsb(['images', 'fmt-other:1'])).stdout.split('\n').filter(Boolean).length, 1, 'only the header');
    // The same table (CREATED aside: a second may pass between the two commands).
    const names = async (args: string[]) => (await tsb(args)).stdout.split('\n').map((l) => l.replace(/\s{3}\S.*ago\s+/, ' … ').replace(/\s+/g, ' '));
    assert.equal(await names(['images', '-a']), await names(['images']));
    assert.is((await tsb(['images', 'a', 'b'])).code, 2);
    // Docker 23's shorthands: `json` is a JSON object per line, `table` alone the usual table.
    const lines = (await tsb(['images', '--format', 'json'])).stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { Repository: string; Tag: string });
    assert.ok(lines.some((l) => l.Repository === 'fmt-other' && l.Tag === '2'), JSON.stringify(lines));
    assert.equal(await names(['images', '--format', 'table']), await names(['images']));
    assert.is((JSON.parse((await tsb(['ps', '-a', '--format', 'json'])).stdout) as { Names: string }).Names, 'fmt-c');
    // docker info's fields: counts from this store (two names, one image), the machine's facts.
    r = await tsb(['info', '-f', '{{.Containers}} {{.ContainersStopped}} {{.ContainersRunning}} {{.Images}} {{.OSType}} {{.NCPU}} {{eq .Driver .snapshotter}} {{.DockerRootDir}}']);
    assert.is(r.stdout, `1 1 0 1 linux ${os.availableParallelism()} true ${root}\n`, r.stderr);
    assert.match((await tsb(['info', '--format', '{{.CgroupVersion}} {{.CgroupDriver}}{{range .SecurityOptions}} {{.}}{{end}}'])).stdout, /^[12] cgroupfs name=seccomp,profile=builtin\n$/);
    const info = JSON.parse((await tsb(['info', '--format', 'json'])).stdout) as { MemTotal: number; KernelVersion: string; root: string };
    assert.is(info.MemTotal, os.totalmem());
    assert.is(info.KernelVersion, os.release());
    assert.is(info.root, root, "tsbuild's own fields as well");
    assert.match((await tsb(['info', '--format', 'text'])).stdout, /^Store: /);
    // docker version's Client/Server shape; plain `version` stays one line; arguments are refused.
    assert.is((await tsb(['version', '-f', '{{.Client.Version}} {{.Server.Version}} {{.Client.Os}}'])).stdout, '0.1.0 0.1.0 linux\n');
    assert.is((await tsb(['version'])).stdout, 'tsbuild 0.1.0\n');
    assert.is((JSON.parse((await tsb(['version', '--format', 'json'])).stdout) as { Server: { Version: string } }).Server.Version, '0.1.0');
    assert.is((await tsb(['version', 'extra'])).code, 2);
    r = await tsb(['inspect', '-f', '{{.Config.Nope}}', 'fmt-img']);
    assert.is(r.code, 2);
    assert.match(r.stderr, /can't evaluate field Nope in \.Config \(fields here: Hostname, .*User/);
  } finally {
    await tsb(['rm', '-f', 'fmt-c']);
  }
});

test.run();
