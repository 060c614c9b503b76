/**
 * tsbuild's one nftables table, `ip tsbuild`. Fixed parts: DNAT of published ports through two maps,
 * masquerade of loopback sources onto a bridge (published ports reached at 127.0.0.1), and the set of
 * tsbuild's bridges. Per network: a masquerade rule for its subnet (unless internal) and forward rules
 * that keep it apart from the other networks (and, internal, from everything outside), each tagged with
 * a comment naming the network so it can be deleted by handle.
 */
import type { PortBinding, Runner } from './network.js';

/** The default store's table; another store's gets its own (`tsbuild_<hash>`), so stores never touch each other's rules. */
export const TABLE = 'tsbuild';

export function tableRuleset(table = TABLE): string {
  const dnat = [
    'fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @hostports',
    'fib daddr type local dnat ip to meta l4proto . th dport map @ports',
  ];
  return `table ip ${table} {
  map ports { type inet_proto . inet_service : ipv4_addr . inet_service; }
  map hostports { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }
  set bridges { type ifname; }
  chain prerouting { type nat hook prerouting priority -100; policy accept; ${dnat.join('; ')}; }
  chain output { type nat hook output priority -100; policy accept; ${dnat.join('; ')}; }
  chain postrouting { type nat hook postrouting priority 100; policy accept; ip saddr 127.0.0.0/8 oifname @bridges masquerade; }
  chain forward { type filter hook forward priority 0; policy accept; }
}
`;
}

export interface NetRules {
  Id: string;
  Bridge: string;
  Subnet: string;
  Internal: boolean;
}

/** The rules of one network: [chain, rule] pairs, each commented with the network's tag. */
export function networkRules(n: NetRules): [string, string][] {
  const tag = `comment "net:${n.Id.slice(0, 12)}"`;
  const out: [string, string][] = [['forward', `iifname "${n.Bridge}" oifname != "${n.Bridge}" oifname @bridges drop ${tag}`]];
  if (n.Internal) {
    out.push(['forward', `iifname "${n.Bridge}" oifname != "${n.Bridge}" drop ${tag}`], ['forward', `oifname "${n.Bridge}" iifname != "${n.Bridge}" drop ${tag}`]);
  } else {
    out.push(['postrouting', `ip saddr ${n.Subnet} oifname != "${n.Bridge}" masquerade ${tag}`]);
  }
  return out;
}

export async function ensureTable(exec: Runner, table = TABLE): Promise<void> {
  const have = await exec('nft', ['list', 'table', 'ip', table]).then(() => true, () => false);
  if (!have) await exec('nft', ['-f', '-'], tableRuleset(table));
}

export async function addNetworkRules(exec: Runner, n: NetRules, table = TABLE): Promise<void> {
  const lines = [`add element ip ${table} bridges { "${n.Bridge}" }`, ...networkRules(n).map(([chain, rule]) => `add rule ip ${table} ${chain} ${rule}`)];
  await exec('nft', ['-f', '-'], `${lines.join('\n')}\n`);
}

/** Deletes a network's rules (found by their comment) and its bridge from the set; missing parts are fine. */
export async function removeNetworkRules(exec: Runner, n: NetRules, table = TABLE): Promise<void> {
  let listing: { nftables: { rule?: { chain: string; handle: number; comment?: string } }[] };
  try {
    listing = JSON.parse(await exec('nft', ['-a', '-j', 'list', 'table', 'ip', table])) as typeof listing;
  } catch {
    return; // no table: nothing of it is left
  }
  const tag = `net:${n.Id.slice(0, 12)}`;
  const lines = listing.nftables.flatMap((o) => (o.rule && o.rule.comment === tag ? [`delete rule ip ${table} ${o.rule.chain} handle ${o.rule.handle}`] : []));
  lines.push(`delete element ip ${table} bridges { "${n.Bridge}" }`);
  // One nft process for all of it (each costs ~8 ms); nft applies a file as one transaction, so when
  // any line fails (removed meanwhile) each is tried on its own, as before.
  try {
    await exec('nft', ['-f', '-'], `${lines.join('\n')}\n`);
  } catch {
    for (const l of lines) await exec('nft', l.split(' ')).catch(() => undefined);
  }
}

export function portElement(p: PortBinding, ip: string, table = TABLE): string[] {
  const any = p.hostIp === '0.0.0.0' || p.hostIp === '';
  return `element ip ${table} ${any ? 'ports' : 'hostports'} { ${any ? '' : `${p.hostIp} . `}${p.proto} . ${p.hostPort} : ${ip} . ${p.containerPort} }`.split(' ');
}
