/** Rootless test fixture: ordinary users made and removed, and tsbuild run as them. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { busyboxContext, repoRoot, tmpdir } from '../testutil/index.js';

export interface User {
  name: string;
  home: string;
}
const tag = crypto.randomBytes(3).toString('hex');
/** With a subordinate range, without one, and the one playing a Kubernetes pod (without one). */
export const ranged: User = { name: `tsbrl${tag}`, home: '' };
export const single: User = { name: `tsbrs${tag}`, home: '' };
export const pod: User = { name: `tsbrk${tag}`, home: '' };
/** A multi-stage build whose RUN steps and COPY --chown give files to ids other than root. */
export const MULTI = `FROM base AS build
RUN mkdir -p /out /tmp && echo made > /out/f && chown 1000:2000 /out/f && echo by-bob > /tmp/b && chown 1234 /tmp/b
FROM base
COPY --from=build --chown=1234:1234 /out /out
COPY --from=build /tmp/b /b
RUN chown 4321 /b && mkdir /own && touch /own/x && chown 65000:3000 /own/x
CMD ["sh", "-c", "id -u; cat /out/f /b; stat -c '%u:%g' /out/f /b /own/x"]
`;

let app = repoRoot;
export const cleanups: (() => void)[] = [];

/** The users reach the program: a clone under /root is private, so it is copied out. */
export function stageApp(): void {
  if (spawnSync('runuser', ['-u', ranged.name, '--', 'test', '-r', path.join(repoRoot, 'dist/bundle/cli.mjs')]).status === 0) return;
  app = tmpdir('tsb-rootless-app-');
  for (const d of ['bin', 'dist/bundle', 'native/build', 'src/runtime/profiles', 'node_modules', 'package.json']) fs.cpSync(path.join(repoRoot, d), path.join(app, d), { recursive: true });
  spawnSync('chmod', ['-R', 'a+rX', app]);
  const dir = app;
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
}

/** Ends the namespace holder a user's commands started (by the pid it recorded). */
export function killHolder(u: User, home = u.home): void {
  const pid = holderPid(u, home);
  if (!pid) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

export function dropSubIds(name: string): void {
  for (const f of ['/etc/subuid', '/etc/subgid']) {
    if (!fs.existsSync(f)) continue;
    fs.writeFileSync(f, fs.readFileSync(f, 'utf8').split('\n').filter((l) => !l.startsWith(`${name}:`)).join('\n'));
  }
}

export function makeUser(u: User, withRange: boolean): void {
  u.home = tmpdir('tsb-rootless-home-');
  const r = spawnSync('useradd', ['-M', '-d', u.home, '-s', '/bin/sh', u.name], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`useradd ${u.name}: ${r.stderr}`);
  cleanups.push(() => {
    dropSubIds(u.name);
    spawnSync('userdel', [u.name]);
  });
  fs.chownSync(u.home, uidOf(u), gidOf(u));
  // Debian's useradd may give a range itself: the test decides.
  dropSubIds(u.name);
  if (withRange) {
    // Above every range already given, so no other user's ids are shared.
    let top = 100000;
    for (const f of ['/etc/subuid', '/etc/subgid']) {
      for (const l of (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '').split('\n')) {
        const [, s, c] = l.split(':');
        if (s && c) top = Math.max(top, Number(s) + Number(c));
      }
    }
    for (const f of ['/etc/subuid', '/etc/subgid']) {
      const cur = fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '';
      fs.writeFileSync(f, `${cur}${cur === '' || cur.endsWith('\n') ? '' : '\n'}${u.name}:${top}:65536\n`);
    }
  }
}

export function uidOf(u: User): number {
  return Number(spawnSync('id', ['-u', u.name], { encoding: 'utf8' }).stdout.trim());
}
export function gidOf(u: User): number {
  return Number(spawnSync('id', ['-g', u.name], { encoding: 'utf8' }).stdout.trim());
}

function asArgs(u: User, args: string[], extra: Record<string, string> = {}): string[] {
  const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', TSBUILD_PULL: 'never', HOME: u.home, XDG_RUNTIME_DIR: path.join(u.home, 'run'), ...extra };
  return ['-u', u.name, '--', 'env', '-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), path.join(app, 'bin/tsbuild'), ...args];
}

/** tsbuild as `u`, in `cwd`, with the user's own default store (~/.local/share/tsbuild). */
export function as(u: User, args: string[], o: { cwd?: string; env?: Record<string, string> } = {}): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('runuser', asArgs(u, args, o.env), { cwd: o.cwd ?? u.home, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

/** The same, running: in a process group of its own (as a terminal's foreground job), stderr piped. */
export function spawnAs(u: User, args: string[], cwd: string): ChildProcess {
  return spawn('runuser', asArgs(u, args), { cwd, detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** The outer tsbuild of a `spawnAs` (runuser's child: env execs node, or bin/tsbuild the single executable, in place). */
export function outerPid(runuserPid: number): number | undefined {
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === runuserPid && /\((node|tsbuild-sea)\) /.test(stat)) return Number(e);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

export function holderPid(u: User, home = u.home): number | undefined {
  try {
    return Number(fs.readFileSync(path.join(home, 'run/tsbuild/userns.pid'), 'utf8').trim());
  } catch {
    return undefined;
  }
}

/**
 * An unprivileged Kubernetes pod, as far as one machine can play it: a user with no subordinate
 * range and no capability outside its own namespace, the root filesystem read-only but for the
 * workspace (its own mount namespace, made by unshare for this command alone).
 */
export function inPod(u: User, workspace: string, args: string[], cwd: string, o: { maskedProc?: boolean } = {}): { code: number; stdout: string; stderr: string } {
  // A runtime's default masks paths in /proc (procMount: Default): one bind over /proc/keys plays it.
  const mask = o.maskedProc ? 'mount --bind /dev/null /proc/keys && ' : '';
  const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', TSBUILD_PULL: 'never', HOME: workspace, TMPDIR: workspace, XDG_RUNTIME_DIR: path.join(workspace, 'run') };
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `${mask}mount --bind "$0" "$0" && mount -o remount,bind,ro / && exec "$@"`, workspace,
    'runuser', '-u', u.name, '--', 'env', '-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), path.join(app, 'bin/tsbuild'), ...args], { cwd, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

export function context(dockerfileRest: string): string {
  const dir = busyboxContext(dockerfileRest);
  fs.chmodSync(dir, 0o755);
  return dir;
}


/**
 * tsbuild as uid 1000 of a user namespace of the test's own, where root has set
 * user.max_user_namespaces to 0 (a per-namespace limit): a kernel that allows no user namespaces, as
 * far as that tsbuild can tell. The namespace goes with its holder, ended by the pid spawn gave.
 */
export async function withoutUserNamespaces(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const helper = path.join(repoRoot, 'native/build/tsbuild-sandbox');
  const base = 3_200_000_000;
  const home = tmpdir('tsb-rootless-nouserns-');
  fs.chownSync(home, base + 1000, base + 1000);
  const holder = spawn(helper, ['userns'], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    let out = '';
    await new Promise<void>((resolve, reject) => {
      holder.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out === 'ready\n') {
          for (const f of ['uid_map', 'gid_map']) fs.writeFileSync(`/proc/${holder.pid}/${f}`, `0 ${base} 65536\n`);
          holder.stdin!.write('x');
        } else if (out === 'ready\nok\n') resolve();
      });
      holder.on('exit', () => reject(new Error(`the namespace holder exited: ${out}`)));
    });
    const env = ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', `HOME=${home}`, `XDG_RUNTIME_DIR=${home}`, 'TSBUILD_PULL=never'];
    const script = `echo 0 > /proc/sys/user/max_user_namespaces && exec setpriv --reuid 1000 --regid 1000 --clear-groups env -i ${env.join(' ')} "$@"`;
    const r = spawnSync(helper, ['join', String(holder.pid), '/bin/sh', '-c', script, 'sh', path.join(app, 'bin/tsbuild'), ...args], { encoding: 'utf8', timeout: 60_000 });
    return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
  } finally {
    holder.kill('SIGKILL');
    fs.rmSync(home, { recursive: true, force: true });
  }
}
