/**
 * The nftables part of the backend gateway: `table inet ticrypt`, rendered
 * whole and changed one transaction at a time. Every export is named here.
 */
export { renderRuleset, chainNames, sourceChainName } from './ruleset.js';
export { counterNames, counterChainNames, dropMark, renderCounterTable } from './counter-table.js';
export {
  renderChange,
  renderRegister,
  renderDeregister,
  renderAllowListChange,
  renderRevoke,
  renderCleanup,
  type NicState,
  type DeltaContext,
} from './delta.js';
export {
  nicElements,
  identityElements,
  entryElements,
  dnsOpenElements,
  elementText,
  portBlocks,
  type NftElement,
} from './elements.js';
export { renderDnsOps, type DnsOp } from './dns-opens.js';
export { NftSession, type NftSessionOptions } from './session.js';
export { nftRunner, nftCommand, type NftRunner, type NftRunnerOptions } from './apply.js';
export { conntrackDeletions, entryDeletions, conntrackRunner, type ConntrackRunner } from './conntrack.js';
export { NftGateway, type NftGatewayOptions } from './gateway.js';
export {
  TABLE,
  COUNTER_TABLE,
  NIC_IDS_MAP,
  NIC_FLOWS_SET,
  REVOKED_SET,
  SOURCE_CHAIN,
  NIC_ID_MASK,
  MAX_NIC_ID,
  markText,
  networkCounters,
  SSH_FORWARDS_MAP,
  SSH_OWNERS_MAP,
  SSH_NARROWED_SET,
  COUNTERS,
  LOG_PREFIX,
  DROP_REASONS,
  dropChainName,
  trafficCounters,
  type DropReason,
  type CountedSide,
} from './names.js';
export { parseCounters, readCounters, listCountersArgs, type CounterValue } from './counters.js';
export {
  IP_LEVELS,
  PORT_SHAPES,
  allowShapes,
  allowSetName,
  dnsSetName,
  dnsShapes,
  keyType,
  keyExpression,
  type Shape,
  type PortShape,
} from './shapes.js';
export type { GatewayState, RulesetOptions, SshForward } from './types.js';
export {
  sshElements,
  nicAccessElements,
  sshDeletions,
  addressBlocks,
  sshSourceSetName,
  SSH_CHAINS,
  type NicSsh,
} from './ssh.js';
export { NftError } from '../../errors/nft-error.js';
export { NftInputError } from '../../errors/nft-input-error.js';
