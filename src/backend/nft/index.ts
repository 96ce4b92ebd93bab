/**
 * The nftables part of the backend gateway: `table inet ticrypt`, rendered
 * whole and changed one transaction at a time. Every export is named here.
 */
export { renderRuleset, domainRules } from './ruleset.js';
export {
  renderChange,
  renderRegister,
  renderDeregister,
  renderAllowListChange,
  renderSshForwardChange,
  type NicState,
  type DeltaContext,
} from './delta.js';
export { nicElements, entryElements, distinctDomains, portBlocks, type NftElement } from './elements.js';
export { nftRunner, nftCommand, type NftRunner, type NftRunnerOptions } from './apply.js';
export { conntrackDeletions, entryDeletions, conntrackRunner, type ConntrackRunner } from './conntrack.js';
export { NftGateway, type NftGatewayOptions } from './gateway.js';
export {
  TABLE,
  REGISTERED_SET,
  REVOKED_SET,
  SSH_FORWARDS_MAP,
  DOMAINS_CHAIN,
  COUNTERS,
  LOG_PREFIX,
  domainSetName,
  domainMemberSetName,
  dnsmasqNftset,
} from './names.js';
export {
  IP_LEVELS,
  PORT_SHAPES,
  allowShapes,
  allowSetName,
  keyType,
  keyExpression,
  type Shape,
  type PortShape,
} from './shapes.js';
export type { GatewayState, RulesetOptions, SshForward } from './types.js';
export { NftError } from '../../errors/nft-error.js';
export { NftInputError } from '../../errors/nft-input-error.js';
