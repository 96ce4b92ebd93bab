/**
 * The complete `table inet ticrypt` for a site and the backend's state, with
 * its counters table (`inet ticrypt_counters`), as one atomic `nft -f` script
 * that replaces these two tables and touches no other.
 */
import { nftCheck } from '../checks.js';
import type { Network, Site } from '../../site/model.js';
import type { AllowEntry } from '../../protocol/api.js';
import { intToIpv4 } from '../../site/address.js';
import { isFailClosedMark } from '../../site/primitives.js';
import { groupBySet, type NftElement } from './elements.js';
import {
  type CountedSide,
  dropChainName,
  type DropReason,
  LOG_PREFIX,
  markText,
  NIC_FLOWS_SET,
  NIC_ID_MASK,
  NIC_IDS_MAP,
  REVOKED_SET,
  SOURCE_CHAIN,
  TABLE,
} from './names.js';
import { dropMark, dropMarkSet, DROPS, renderCounterTable, type SourceDrop } from './counter-table.js';
import {
  nicAccessElements,
  SSH_CHAINS,
  sshClientRules,
  sshLocalChain,
  sshNarrowedRules,
  sshPreroutingRules,
  sshSets,
} from './ssh.js';
import { allowSetName, allowShapes, dnsSetName, dnsShapes, keyExpression, keyType } from './shapes.js';
import type { GatewayState, RulesetOptions } from './types.js';
import { admitted, auditCounterNames, auditedNetworks, ctNicId, refusalRules, refusalStatements } from './audit.js';

/**
 * Render the whole table: `table inet ticrypt {}`, `delete table inet ticrypt`
 * and the full table, then the same for its counters table
 * (`counter-table.ts`), so that one `nft -f` replaces exactly these two
 * tables, atomically, whether they existed or not.
 *
 * @throws {NftInputError} `E_NFT_INPUT` when any value fails its boundary check.
 * @example
 * await applyNft(renderRuleset(defaultSite(), { registrations: [], allowLists: [] }));
 */
export function renderRuleset(site: Site, state: GatewayState, options: RulesetOptions = {}): string {
  const body = [
    ...auditCounterNames(site, options.audit).map((name) => `  counter ${name} {\n  }`),
    ...renderSets(site, state),
    ...renderChains(site, options),
  ];
  return [
    `table ${TABLE} {}`,
    `delete table ${TABLE}`,
    `table ${TABLE} {`,
    body.join('\n'),
    '}',
    renderCounterTable(site),
  ].join('\n');
}

/** The base chains that drop what the table marked as dropped, after its counters table counted it. */
const DROP_MARKED_CHAINS = {
  source: ['drop_marked_source', 'prerouting', 'mangle'],
  forward: ['drop_marked_forward', 'forward', 'filter'],
  input: ['drop_marked_input', 'input', 'filter'],
} as const;

/** The chain a network's packets are checked in as they arrive: `source_<network>`. */
export function sourceChainName(network: Network): string {
  return `${SOURCE_CHAIN}_${network.name}`;
}

/** Every chain of the table, by name: what the backend's watch expects to find. */
export function chainNames(site: Site): string[] {
  return [
    SOURCE_CHAIN,
    ...site.networks.map(sourceChainName),
    'input',
    'vm_input',
    'forward',
    'from_vm',
    ...(site.networks.some((n) => n.egress === 'allow-list') ? ['allow_egress', 'allow_ingress'] : []),
    'to_vm',
    SSH_CHAINS.clients,
    SSH_CHAINS.narrowed,
    'prerouting',
    SSH_CHAINS.local,
    'postrouting',
    ...DROPS.map(([reason, side]) => dropChainName(reason, side)),
    ...Object.values(DROP_MARKED_CHAINS).map(([name]) => name),
  ];
}

/** `meta mark set 0x00ffff05 accept`: a refused packet marked for its counting and its drop (see `counter-table.ts`). */
function marked(drop: readonly [DropReason, CountedSide] | SourceDrop): string {
  return `meta mark set ${markText(dropMark(drop))} accept`;
}

/**
 * One chain per drop: the packet gets the drop's mark and is accepted by this
 * chain, so that the counters table (priority + 10) counts it for its network
 * and site-wide, and `drop_marked_*` (priority + 20) drops it. Every drop of
 * the forward and input chains is a `goto` here.
 */
function dropChains(): string[] {
  return DROPS.map(([reason, side]) => chain(dropChainName(reason, side), [marked([reason, side])]));
}

/**
 * The drops themselves: base chains after the counters table's (`priority
 * <hook's> + 20`) that drop every packet carrying a drop mark. They are in
 * this table, so a missing counters table loses counts, never a drop.
 */
function dropMarkedChains(): string[] {
  return Object.values(DROP_MARKED_CHAINS).map(([name, hook, priority]) =>
    chain(name, [
      `type filter hook ${hook} priority ${priority} + 20; policy accept;`,
      `meta mark ${dropMarkSet()} drop`,
    ]),
  );
}

/** `{ "a", "b" }`: an anonymous set of quoted interface names. */
function ifaceSet(networks: readonly Network[]): string {
  return `{ ${networks.map((n) => `"${nftCheck.interfaceName('gatewayInterface', n.gatewayInterface)}"`).join(', ')} }`;
}

function setBlock(name: string, type: string, keys: readonly string[], extra: readonly string[] = []): string {
  const lines = [
    `  ${type.includes(' : ') ? 'map' : 'set'} ${name} {`,
    `    type ${type}`,
    ...extra.map((line) => `    ${line}`),
  ];
  if (keys.length > 0) lines.push(`    elements = {\n      ${keys.join(',\n      ')}\n    }`);
  return [...lines, '  }'].join('\n');
}

function renderSets(site: Site, state: GatewayState): string[] {
  const entriesOf = new Map<string, readonly AllowEntry[]>(state.allowLists.map((l) => [l.vmUuid, l.entries]));
  const sshOf = new Map((state.ssh ?? []).map((f) => [`${f.network}/${f.mac}`, f]));
  const elements: NftElement[] = state.registrations.flatMap((r) => {
    const ssh = sshOf.get(`${r.network}/${r.mac}`);
    return nicAccessElements(site, {
      registration: r,
      entries: entriesOf.get(r.vmUuid) ?? [],
      ...(ssh ? { ssh } : {}),
    });
  });
  const groups = groupBySet(elements);
  const keys = (set: string) => [...new Set(groups.get(set) ?? [])];
  return [
    setBlock(NIC_IDS_MAP, 'ifname . ether_addr . ipv4_addr : mark', keys(NIC_IDS_MAP)),
    setBlock(NIC_FLOWS_SET, 'ifname . ipv4_addr . mark', keys(NIC_FLOWS_SET)),
    setBlock(REVOKED_SET, 'mark', []),
    ...allowShapes().map((shape) => setBlock(allowSetName(shape), keyType(shape), keys(allowSetName(shape)))),
    // Filled by the DNS front, one answer at a time, each element with its own timeout; empty after a rebuild.
    ...dnsShapes().map((shape) => setBlock(dnsSetName(shape.port), keyType(shape), [], ['flags timeout'])),
    ...sshSets(setBlock, keys),
  ];
}

function subnetText(cidr: string): string {
  const subnet = nftCheck.destination('subnet', cidr);
  return `${intToIpv4(subnet.first)}/${subnet.prefix}`;
}

function chain(name: string, rules: readonly string[]): string {
  return [`  chain ${name} {`, ...rules.map((rule) => `    ${rule}`), '  }'].join('\n');
}

/** The fail-closed bit, re-checked: one of bits 24-31. */
function failClosedBit(site: Site): string {
  const mark = site.backend.failClosedMark;
  if (!isFailClosedMark(mark)) {
    throw nftCheck.refuse('backend.failClosedMark', 'a single mark bit among 0x01000000-0x80000000', mark);
  }
  return markText(mark);
}

/**
 * `source` (prerouting, priority mangle, before routing) and one chain per
 * network. A packet arriving on a network's gateway interface must carry a
 * source address of its subnet, and on an allow-list network a registered,
 * non-revoked `interface . MAC . IP`, whose id it then carries in `meta mark`;
 * anything else is dropped and counted per network. Every packet let in from
 * a VM network, and every packet from the uplink, gets the fail-closed bit:
 * the backend's policy routing blackholes forwarded VM traffic without it, so
 * without this table nothing forwards. A VM subnet's address arriving on any
 * other interface is dropped, so masquerading by source subnet is safe.
 */
function sourceChains(site: Site, options: RulesetOptions): string[] {
  const bit = failClosedBit(site);
  const uplink = nftCheck.interfaceName('backend.uplink', site.backend.uplink);
  const rate = nftCheck.rate('log.rate', options.logRate ?? '10/second');
  const log = (what: string) =>
    options.log === true ? [`limit rate ${rate} log prefix "${LOG_PREFIX} ${what}: " level info`] : [];
  const dhcpDiscover = 'ip saddr 0.0.0.0 udp sport 68 udp dport 67 accept';
  const audited = new Set(auditedNetworks(site).map((n) => n.name));
  const perNetwork = site.networks.map((n) => {
    const subnet = subnetText(n.subnet);
    const refused = (reason: 'spoofed' | 'unregistered', match: string) =>
      options.audit !== undefined && audited.has(n.name)
        ? [`${match} ${refusalStatements(options.audit, reason, n)}`]
        : [];
    const rules =
      n.egress === 'allow-list'
        ? [
            'meta nfproto != ipv4 accept',
            dhcpDiscover,
            ...refused('spoofed', `ip saddr != ${subnet}`),
            `ip saddr != ${subnet} ${marked('spoofed')}`,
            ...log('unregistered').map((rule) => `iifname . ether saddr . ip saddr != @${NIC_IDS_MAP} ${rule}`),
            ...refused('unregistered', `iifname . ether saddr . ip saddr != @${NIC_IDS_MAP}`),
            `iifname . ether saddr . ip saddr != @${NIC_IDS_MAP} ${marked('unregistered')}`,
            `meta mark set iifname . ether saddr . ip saddr map @${NIC_IDS_MAP}`,
            `meta mark @${REVOKED_SET} ${marked('unregistered')}`,
            `meta mark set meta mark | ${bit} accept`,
          ]
        : [
            `ip saddr ${subnet} meta mark set meta mark | ${bit} accept`,
            dhcpDiscover,
            'meta nfproto != ipv4 accept',
            marked('spoofed'),
          ];
    return chain(sourceChainName(n), rules);
  });
  const dispatch = site.networks
    .map((n) => `"${nftCheck.interfaceName('gatewayInterface', n.gatewayInterface)}" : goto ${sourceChainName(n)}`)
    .join(', ');
  return [
    chain(SOURCE_CHAIN, [
      'type filter hook prerouting priority mangle; policy accept;',
      `iifname vmap { ${dispatch} }`,
      `iifname != "lo" ip saddr { ${site.networks.map((n) => subnetText(n.subnet)).join(', ')} } ${marked('spoofed_other')}`,
      `iifname "${uplink}" meta mark set meta mark | ${bit}`,
    ]),
    ...perNetwork,
  ];
}

function renderChains(site: Site, options: RulesetOptions): string[] {
  const uplink = nftCheck.interfaceName('backend.uplink', site.backend.uplink);
  const management = nftCheck.ipv4('backend.management.address', site.backend.management.address);
  const vm = site.networks;
  for (const network of vm) {
    if (network.gatewayInterface === uplink) {
      throw nftCheck.refuse(
        `networks.${network.name}.gatewayInterface`,
        `an interface other than the uplink ${uplink}`,
        uplink,
      );
    }
  }
  const allowList = vm.filter((n) => n.egress === 'allow-list');
  const open = vm.filter((n) => n.egress === 'open');
  const controlled = vm.filter((n) => n.dns === 'controlled');
  const rate = nftCheck.rate('log.rate', options.logRate ?? '10/second');
  const log = (what: string) =>
    options.log === true ? [`limit rate ${rate} log prefix "${LOG_PREFIX} ${what}: " level info`] : [];
  const drop = (reason: DropReason, side: CountedSide = 'from') => `goto ${dropChainName(reason, side)}`;
  const idMask = markText(NIC_ID_MASK);
  const established = 'ct state established,related';
  const ctId = ctNicId(options.audit);
  const gatewayRules = vm.flatMap((n) => {
    const at = `iifname "${nftCheck.interfaceName('gatewayInterface', n.gatewayInterface)}" ip daddr ${nftCheck.ipv4('gateway', n.gateway)}`;
    return [`${at} meta l4proto { tcp, udp } th dport 53 accept`, `${at} meta l4proto icmp accept`];
  });
  const onAllowList = (rules: string[]) => (allowList.length > 0 ? rules : []);
  const onOpen = (rules: string[]) => (open.length > 0 ? rules : []);
  return [
    ...sourceChains(site, options),
    chain('input', ['type filter hook input priority filter; policy accept;', `iifname ${ifaceSet(vm)} jump vm_input`]),
    chain('vm_input', [
      'meta nfproto ipv4 udp sport 68 udp dport 67 accept',
      // Flows the backend itself opened (dnsmasq pings an address before offering it).
      `${established} ct direction reply accept`,
      ...onAllowList([
        `iifname ${ifaceSet(allowList)} ${established} iifname . ip saddr . ${ctId} @${NIC_FLOWS_SET} accept`,
      ]),
      ...onOpen([`iifname ${ifaceSet(open)} ${established} accept`]),
      `${established} ${drop('unowned_flow')}`,
      // The NIC's id (from the source chain) becomes the flow's mark; conntrack keeps it only if a rule accepts.
      ...onAllowList([`iifname ${ifaceSet(allowList)} ct mark set meta mark & ${idMask}`]),
      ...gatewayRules,
      ...log('input drop'),
      drop('input'),
    ]),
    chain('forward', [
      'type filter hook forward priority filter; policy accept;',
      `iifname ${ifaceSet(vm)} jump from_vm`,
      `oifname ${ifaceSet(vm)} jump to_vm`,
    ]),
    chain('from_vm', [
      ...refusalRules(site, options.audit, 'cross-network', `oifname != "${uplink}"`),
      `oifname != "${uplink}" ${drop('cross')}`,
      `ip daddr ${management} ${drop('cross')}`,
      `meta nfproto != ipv4 ${drop('cross')}`,
      'ct state invalid drop',
      ...(controlled.length > 0
        ? [`iifname ${ifaceSet(controlled)} meta l4proto { tcp, udp } th dport 53 ${drop('dns')}`]
        : []),
      ...onAllowList([`iifname ${ifaceSet(allowList)} goto allow_egress`]),
      `${established} accept`,
      ...onOpen([`iifname ${ifaceSet(open)} accept`]),
      drop('egress'),
    ]),
    ...onAllowList([
      chain('allow_egress', [
        `${ctId} @${REVOKED_SET} ${drop('unowned_flow')}`,
        // An established flow is this NIC's only if the table accepted it for this NIC: its ct mark is the NIC's id.
        `${established} iifname . ip saddr . ${ctId} @${NIC_FLOWS_SET} accept`,
        `${established} ${drop('unowned_flow')}`,
        `ct mark set meta mark & ${idMask}`,
        ...allowShapes().map(
          (shape) => `${keyExpression(shape)} @${allowSetName(shape)}${admitted(site, options.audit, 'allow')} accept`,
        ),
        // What the DNS front opened for this NIC, keyed like the allow sets: the flow gets the same mark.
        ...dnsShapes().map(
          (shape) => `${keyExpression(shape)} @${dnsSetName(shape.port)}${admitted(site, options.audit, 'dns')} accept`,
        ),
        ...log('egress drop'),
        ...refusalRules(site, options.audit, 'not-allowed', ''),
        drop('egress'),
      ]),
    ]),
    chain('to_vm', [
      `iifname != "${uplink}" ${drop('cross', 'to')}`,
      ...onAllowList([`oifname ${ifaceSet(allowList)} goto allow_ingress`]),
      `${established} accept`,
      // A flow the prerouting NAT forwarded to a VM's port 22 (SSH access): its clients are checked there.
      `ct status dnat tcp dport 22 goto ${SSH_CHAINS.clients}`,
      ...log('inbound drop'),
      drop('inbound', 'to'),
    ]),
    ...onAllowList([
      chain('allow_ingress', [
        `${ctId} @${REVOKED_SET} ${drop('unowned_flow', 'to')}`,
        `${established} oifname . ip daddr . ${ctId} @${NIC_FLOWS_SET} accept`,
        `${established} ${drop('unowned_flow', 'to')}`,
        // SSH access: the NAT gave the flow the id of the NIC its port belongs to; it must be this NIC's.
        `ct status dnat tcp dport 22 oifname . ip daddr . ${ctId} @${NIC_FLOWS_SET} goto ${SSH_CHAINS.clients}`,
        ...log('inbound drop'),
        drop('inbound', 'to'),
      ]),
    ]),
    ...dropChains(),
    ...dropMarkedChains(),
    chain(SSH_CHAINS.clients, sshClientRules(site, options.audit)),
    chain(SSH_CHAINS.narrowed, sshNarrowedRules(site, options.audit)),
    chain('prerouting', ['type nat hook prerouting priority dstnat; policy accept;', ...sshPreroutingRules(site)]),
    chain(SSH_CHAINS.local, sshLocalChain(site)),
    chain('postrouting', [
      'type nat hook postrouting priority srcnat; policy accept;',
      // Each network's own subnet, arriving on its own interface (the source chains guarantee the pair).
      ...vm.map(
        (n) =>
          `oifname "${uplink}" iifname "${nftCheck.interfaceName('gatewayInterface', n.gatewayInterface)}" ip saddr ${subnetText(n.subnet)} masquerade`,
      ),
    ]),
  ];
}
