/**
 * USER resolution as Docker does it at container start: `name`, `uid`, `name:group`, `uid:gid`, looked up
 * in the image's /etc/passwd and /etc/group; supplementary groups are the groups that list the user.
 */
import fs from 'node:fs';
import path from 'node:path';
import { TsbuildError } from '../errors/index.js';
import { findInLayers } from './layers.js';
import { readOr } from './cgroupfs.js';

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
}

interface PasswdEntry { name: string; uid: number; gid: number; home: string }
interface GroupEntry { name: string; gid: number; members: string[] }

export function parsePasswd(text: string | undefined): PasswdEntry[] {
  return (text ?? '').split('\n').flatMap((l) => {
    const f = l.split(':');
    if (f.length < 7 || l.startsWith('#')) return [];
    return [{ name: f[0]!, uid: parseInt(f[2]!, 10), gid: parseInt(f[3]!, 10), home: f[5]! }];
  });
}

export function parseGroup(text: string | undefined): GroupEntry[] {
  return (text ?? '').split('\n').flatMap((l) => {
    const f = l.split(':');
    if (f.length < 4 || l.startsWith('#')) return [];
    return [{ name: f[0]!, gid: parseInt(f[2]!, 10), members: f[3]!.split(',').filter(Boolean) }];
  });
}

const isNum = (s: string) => /^\d+$/.test(s);

/** As Docker: ids are 31-bit; a larger number would wrap in the kernel (4294967296 becomes root). */
const MAX_ID = 2147483647;
function checkId(s: string): void {
  if (isNum(s) && Number(s) > MAX_ID) throw new TsbuildError('INVALID_USER', `uids and gids must be in range 0-${MAX_ID}, not ${s}`);
}

/**
 * How a user spec is read. `process` (USER, `run -u`, WORKDIR ownership): a user alone takes the
 * primary group from /etc/passwd and the supplementary groups that list it; an unknown name is an
 * error. `chown` (COPY/ADD --chown), as BuildKit does it: a user name alone takes its primary group
 * from /etc/passwd, a number alone means gid = uid, there are no supplementary groups, and a name the
 * image does not know yet becomes 0 (the result lists it in `unknown`, so the caller can warn).
 * A number never needs an entry.
 */
export type UserSpecKind = 'process' | 'chown';

export function resolveUser(spec: string, passwdText: string | undefined, groupText: string | undefined, kind: UserSpecKind = 'process'): ResolvedUser & { unknown?: string[] } {
  const [u0 = '', g] = spec.split(':', 2);
  // No USER at all means uid 0, whether or not the image has an /etc/passwd (FROM scratch images don't).
  const u = u0 === '' ? '0' : u0;
  checkId(u);
  if (g !== undefined) checkId(g);
  const passwd = parsePasswd(passwdText);
  const groups = parseGroup(groupText);
  const unknown: string[] = [];
  const entry = passwd.find((p) => (isNum(u) ? p.uid === parseInt(u, 10) : p.name === u));
  if (!entry && !isNum(u)) {
    if (kind === 'process') throw new TsbuildError('USER_NOT_FOUND', `unable to find user ${u}: no matching entries in the image's /etc/passwd (use a numeric uid or add the user in an earlier step)`);
    unknown.push(`user ${u}`);
  }
  const uid = isNum(u) ? parseInt(u, 10) : (entry?.uid ?? 0);
  let gid = kind === 'chown' && isNum(u) ? uid : (entry?.gid ?? 0);
  if (g !== undefined && g !== '') {
    if (isNum(g)) gid = parseInt(g, 10);
    else {
      const ge = groups.find((x) => x.name === g);
      if (!ge && kind === 'process') throw new TsbuildError('GROUP_NOT_FOUND', `unable to find group ${g}: no matching entries in the image's /etc/group`);
      if (!ge) unknown.push(`group ${g}`);
      gid = ge?.gid ?? 0;
    }
  }
  const name = entry?.name;
  const additionalGids = g || kind === 'chown' ? [] : groups.filter((x) => name !== undefined && x.members.includes(name) && x.gid !== gid).map((x) => x.gid);
  return { uid, gid, additionalGids, home: entry?.home || (uid === 0 ? '/root' : '/'), ...(unknown.length ? { unknown } : {}) };
}

/** The host's account of a uid and gid, from /etc/passwd and /etc/group: name, home, group name. */
export function hostAccount(uid: number | undefined, gid: number | undefined): { name?: string; home?: string; group?: string } {
  const me = parsePasswd(readOr('/etc/passwd')).find((p) => p.uid === uid);
  return { name: me?.name, home: me?.home, group: parseGroup(readOr('/etc/group')).find((g) => g.gid === gid)?.name };
}

/**
 * Adds keep-id's user to the image's /etc/passwd and its group to /etc/group (as podman does), by
 * writing the files into the container's writable layer `upper` before it first starts. Nothing is
 * written for a file the image lacks or an id it already names. `layers` are the root's layer
 * directories, top first.
 */
export function addUserEntries(layers: string[], upper: string, user: { name: string; uid: number; gid: number; home: string }, group: string): void {
  const add = (file: string, has: (text: string) => boolean, line: string) => {
    const host = findInLayers(layers, file);
    if (!host) return;
    const text = fs.readFileSync(host, 'utf8');
    if (has(text)) return;
    const st = fs.statSync(host);
    const parent = path.dirname(file);
    const dir = path.join(upper, parent);
    if (!fs.existsSync(dir)) {
      // The directory as the image has it, so the layer below still shows through (not opaque).
      const pst = fs.statSync(findInLayers(layers, parent)!);
      fs.mkdirSync(dir, { recursive: true });
      fs.chownSync(dir, pst.uid, pst.gid);
      fs.chmodSync(dir, pst.mode & 0o7777);
    }
    const out = path.join(upper, file);
    fs.writeFileSync(out + '.tmp', `${text}${text === '' || text.endsWith('\n') ? '' : '\n'}${line}\n`, { mode: st.mode & 0o7777 });
    fs.chownSync(out + '.tmp', st.uid, st.gid);
    fs.chmodSync(out + '.tmp', st.mode & 0o7777);
    fs.renameSync(out + '.tmp', out);
  };
  add('/etc/passwd', (t) => parsePasswd(t).some((p) => p.uid === user.uid), `${user.name}:*:${user.uid}:${user.gid}:${user.name}:${user.home}:/bin/sh`);
  add('/etc/group', (t) => parseGroup(t).some((g) => g.gid === user.gid), `${group}:x:${user.gid}:`);
}
