import fs from 'node:fs';
import path from 'node:path';
import type { NetworkMode } from './spec.js';

/**
 * The generated /etc/hosts, /etc/hostname and (host network) /etc/resolv.conf a sandbox bind-mounts,
 * written into `dir`; returns name → host path for SpecOptions.etcFiles.
 */
/** The host's resolvers a container on its own network can reach: loopback ones cannot be (Docker's rule). */
export function containerResolvConf(host: string): string {
  const lines = host.split('\n');
  const keep = lines.filter((l) => !/^\s*nameserver\s+(127\.|::1\b)/.test(l));
  if (!keep.some((l) => /^\s*nameserver\s/.test(l))) keep.push('nameserver 8.8.8.8', 'nameserver 8.8.4.4');
  return `${keep.filter((l, i) => l !== '' || i < keep.length - 1).join('\n')}\n`;
}

export interface Resolv {
  nameservers: string[];
  search: string[];
  options: string[];
}

export function writeEtcFiles(dir: string, hostname: string, network: NetworkMode, extraHosts: string[] = [], ip?: string, resolv?: Resolv): Record<string, string> {
  fs.mkdirSync(dir, { recursive: true });
  const files: Record<string, string> = {};
  const hosts = path.join(dir, 'hosts');
  // --add-host entries are `name:ip` (IPv6 addresses keep their colons).
  const extra = extraHosts.map((h) => `${h.slice(h.indexOf(':') + 1)}\t${h.slice(0, h.indexOf(':'))}\n`).join('');
  fs.writeFileSync(hosts, `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n${ip ?? '127.0.1.1'}\t${hostname}\n${extra}`);
  files['hosts'] = hosts;
  const hn = path.join(dir, 'hostname');
  fs.writeFileSync(hn, hostname + '\n');
  files['hostname'] = hn;
  if (network !== 'none') {
    const rc = path.join(dir, 'resolv.conf');
    let text = '';
    try {
      text = fs.readFileSync('/etc/resolv.conf', 'utf8');
    } catch {
      // no resolver configured on the host
    }
    fs.writeFileSync(rc, resolv ? resolvText(resolv, text) : network === 'host' ? text : containerResolvConf(text));
    files['resolv.conf'] = rc;
  }
  return files;
}


/** resolv.conf from --dns/--dns-search/--dns-option (or a network's resolver); what is not given comes from the host's. */
function resolvText(r: Resolv, host: string): string {
  const servers = r.nameservers.length ? r.nameservers.map((n) => `nameserver ${n}`) : containerResolvConf(host).split('\n').filter((l) => /^\s*nameserver\s/.test(l));
  const search = r.search.length ? [`search ${r.search.join(' ')}`] : host.split('\n').filter((l) => /^\s*search\s/.test(l));
  const options = r.options.length ? [`options ${r.options.join(' ')}`] : [];
  return `${[...search, ...servers, ...options].join('\n')}\n`;
}
