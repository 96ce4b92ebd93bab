/**
 * The complete `table inet ticrypt` for a site and the backend's state, as
 * one atomic `nft -f` script that replaces this table and touches no other.
 */
import { nftCheck } from '../checks.js';
import type { Network, Site } from '../../site/model.js';
import type { AllowEntry } from '../../protocol/api.js';
import { intToIpv4 } from '../../site/address.js';
import { distinctDomains, groupBySet, nicElements, type NftElement } from './elements.js';
import {
  COUNTERS,
  DOMAINS_CHAIN,
  domainMemberSetName,
  domainSetName,
  LOG_PREFIX,
  REGISTERED_SET,
  REVOKED_SET,
  SSH_FORWARDS_MAP,
  TABLE,
} from './names.js';
import { allowSetName, allowShapes, keyExpression, keyType, PORT_SHAPES } from './shapes.js';
import type { GatewayState, RulesetOptions } from './types.js';

/**
 * Render the whole table: `table inet ticrypt {}`, `delete table inet ticrypt`
 * and the full table, so that one `nft -f` replaces exactly this table,
 * atomically, whether it existed or not.
 *
 * @throws {NftInputError} `E_NFT_INPUT` when any value fails its boundary check.
 * @example
 * await applyNft(renderRuleset(defaultSite(), { registrations: [], allowLists: [] }));
 */
export function renderRuleset(site: Site, state: GatewayState, options: RulesetOptions = {}): string {
  const body = [
    ...Object.values(COUNTERS).map((name) => `  counter ${name} {\n  }`),
    ...renderSets(site, state, options),
    ...renderChains(site, state, options),
  ];
  return [`table ${TABLE} {}`, `delete table ${TABLE}`, `table ${TABLE} {`, body.join('\n'), '}', ''].join('\n');
}

/** `{ "a", "b" }`: an anonymous set of quoted interface names. */
function ifaceSet(networks: readonly Network[]): string {
  return `{ ${networks.map((n) => `"${nftCheck.interfaceName('gatewayInterface', n.gatewayInterface)}"`).join(', ')} }`;
}

function setBlock(name: string, type: string, keys: readonly string[], extra: readonly string[] = []): string {
  const lines = [`  set ${name} {`, `    type ${type}`, ...extra.map((line) => `    ${line}`)];
  if (keys.length > 0) lines.push(`    elements = {\n      ${keys.join(',\n      ')}\n    }`);
  return [...lines, '  }'].join('\n');
}

function renderSets(site: Site, state: GatewayState, options: RulesetOptions): string[] {
  const entriesOf = new Map<string, readonly AllowEntry[]>(state.allowLists.map((l) => [l.vmUuid, l.entries]));
  const elements: NftElement[] = state.registrations.flatMap((r) =>
    nicElements(site, r, entriesOf.get(r.vmUuid) ?? []),
  );
  const groups = groupBySet(elements);
  const keys = (set: string) => [...new Set(groups.get(set) ?? [])];
  const timeout = nftCheck.timeout('domainTimeout', options.domainTimeout ?? '1d');
  const domains = registeredDomains(state);
  const forwards = (state.sshForwards ?? []).map(
    (f) => `${nftCheck.port('sshForwards.port', f.port)} : ${nftCheck.ipv4('sshForwards.ip', f.ip)}`,
  );
  return [
    setBlock(REGISTERED_SET, 'ifname . ether_addr . ipv4_addr', keys(REGISTERED_SET)),
    setBlock(REVOKED_SET, 'ifname . ether_addr . ipv4_addr', []),
    ...allowShapes().map((shape) => setBlock(allowSetName(shape), keyType(shape), keys(allowSetName(shape)))),
    ...domains.flatMap((domain) => [
      setBlock(domainSetName(domain), 'ipv4_addr', [], ['flags timeout', `timeout ${timeout}`]),
      ...PORT_SHAPES.map((port) => {
        const name = domainMemberSetName(domain, port);
        return setBlock(name, keyType({ ipBits: 0, port }), keys(name));
      }),
    ]),
    [`  map ${SSH_FORWARDS_MAP} {`, '    type inet_service : ipv4_addr', ...elementsLine(forwards), '  }'].join('\n'),
  ];
}

/** The distinct domains named by the allow-lists of VMs with at least one registered NIC. */
function registeredDomains(state: GatewayState): string[] {
  const registered = new Set(state.registrations.map((r) => r.vmUuid));
  return distinctDomains(state.allowLists.filter((l) => registered.has(l.vmUuid)).flatMap((l) => l.entries));
}

function elementsLine(keys: readonly string[]): string[] {
  return keys.length === 0 ? [] : [`    elements = { ${keys.join(', ')} }`];
}

/** The rules of the `domains` chain: per domain and key shape, one lookup. */
export function domainRules(domains: readonly string[]): string[] {
  return domains.flatMap((domain) =>
    PORT_SHAPES.map(
      (port) =>
        `ip daddr @${domainSetName(domain)} ${keyExpression({ ipBits: 0, port })} @${domainMemberSetName(domain, port)} accept`,
    ),
  );
}

function subnetText(cidr: string): string {
  const subnet = nftCheck.destination('subnet', cidr);
  return `${intToIpv4(subnet.first)}/${subnet.prefix}`;
}

function chain(name: string, rules: readonly string[]): string {
  return [`  chain ${name} {`, ...rules.map((rule) => `    ${rule}`), '  }'].join('\n');
}

function renderChains(site: Site, state: GatewayState, options: RulesetOptions): string[] {
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
  const drop = (counter: string) => `counter name ${counter} drop`;
  const domains = registeredDomains(state);
  const gatewayRules = vm.flatMap((n) => {
    const at = `iifname "${nftCheck.interfaceName('gatewayInterface', n.gatewayInterface)}" ip daddr ${nftCheck.ipv4('gateway', n.gateway)}`;
    return [`${at} meta l4proto { tcp, udp } th dport 53 accept`, `${at} meta l4proto icmp accept`];
  });
  return [
    chain('input', ['type filter hook input priority filter; policy accept;', `iifname ${ifaceSet(vm)} jump vm_input`]),
    chain('vm_input', [
      'ct state established,related accept',
      'meta nfproto ipv4 udp sport 68 udp dport 67 accept',
      ...gatewayRules,
      ...log('input drop'),
      drop(COUNTERS.input),
    ]),
    chain('forward', [
      'type filter hook forward priority filter; policy accept;',
      `iifname ${ifaceSet(vm)} jump from_vm`,
      `oifname ${ifaceSet(vm)} jump to_vm`,
    ]),
    chain('from_vm', [
      // Every packet from an allow-list network, established ones too, must come from a registered NIC
      // that is not revoked: a deregistration cuts open connections at their next packet.
      ...(allowList.length > 0
        ? [
            `iifname ${ifaceSet(allowList)} iifname . ether saddr . ip saddr @${REVOKED_SET} ${drop(COUNTERS.unregistered)}`,
            ...log('unregistered').map(
              (rule) => `iifname ${ifaceSet(allowList)} iifname . ether saddr . ip saddr != @${REGISTERED_SET} ${rule}`,
            ),
            `iifname ${ifaceSet(allowList)} iifname . ether saddr . ip saddr != @${REGISTERED_SET} ${drop(COUNTERS.unregistered)}`,
          ]
        : []),
      'ct state established,related accept',
      `oifname != "${uplink}" ${drop(COUNTERS.cross)}`,
      `ip daddr ${management} ${drop(COUNTERS.cross)}`,
      `meta nfproto != ipv4 ${drop(COUNTERS.cross)}`,
      'ct state invalid drop',
      ...(controlled.length > 0
        ? [`iifname ${ifaceSet(controlled)} meta l4proto { tcp, udp } th dport 53 ${drop(COUNTERS.dns)}`]
        : []),
      ...(open.length > 0 ? [`iifname ${ifaceSet(open)} accept`] : []),
      ...(allowList.length > 0 ? [`iifname ${ifaceSet(allowList)} jump allow_egress`] : []),
      drop(COUNTERS.egress),
    ]),
    chain('allow_egress', [
      ...allowShapes().map((shape) => `${keyExpression(shape)} @${allowSetName(shape)} accept`),
      `jump ${DOMAINS_CHAIN}`,
      ...log('egress drop'),
      drop(COUNTERS.egress),
    ]),
    chain(DOMAINS_CHAIN, domainRules(domains)),
    chain('to_vm', [
      'ct state established,related accept',
      `iifname != "${uplink}" ${drop(COUNTERS.cross)}`,
      'ct status dnat tcp dport 22 accept',
      ...log('inbound drop'),
      drop(COUNTERS.inbound),
    ]),
    chain('prerouting', [
      'type nat hook prerouting priority dstnat; policy accept;',
      `iifname "${uplink}" fib daddr type local dnat ip to tcp dport map @${SSH_FORWARDS_MAP} : 22`,
    ]),
    chain('postrouting', [
      'type nat hook postrouting priority srcnat; policy accept;',
      `oifname "${uplink}" ip saddr { ${vm.map((n) => subnetText(n.subnet)).join(', ')} } masquerade`,
    ]),
  ];
}
