/**
 * ticrypt-net: Open vSwitch based VM networking for tiCrypt.
 *
 * The library API: validate a site, render libvirt network and interface XML,
 * read domain and network XML back. Every export is named here.
 *
 * @example
 * import { defaultSite, findNetwork, generateMac, renderInterfaceXml } from 'ticrypt-net';
 * const site = defaultSite();
 * const xml = renderInterfaceXml({ network: findNetwork(site, 'secure'), mac: generateMac() });
 */

// Names and paths shared by every part
export {
  DEFAULT_LIBVIRT_URI,
  DEFAULT_LIBVIRT_URI as DEFAULT_VIRSH_URI,
  LIBVIRT_HOOKS_DIR,
  HOOK_DROP_IN_NAME,
  NFT_TABLE,
  NFT_TABLE_REF,
  DEFAULT_HOOK_CONFIG,
  DEFAULT_HOOK_CACHE,
  DEFAULT_SPOOL_DIR,
  DEFAULT_STATE_DIR,
  DEFAULT_STORE,
  DEFAULT_ADMIN_TOKEN_FILE,
  DEFAULT_BACKEND_URL,
} from './names.js';

// Errors
export { TicryptNetError, isTicryptNetError } from './errors/ticrypt-net-error.js';
export { SiteError, type SiteIssue } from './errors/site-error.js';
export { XmlParseError } from './errors/xml-parse-error.js';
export { UsageError } from './errors/usage-error.js';
export { BoundaryInputError, type Boundary } from './errors/boundary-input-error.js';
export { ProgramError, type ProgramFailure } from './errors/program-error.js';
export { ConntrackError } from './errors/conntrack-error.js';

// Running programs: one runner (execa, never a shell), in a network namespace when asked
export {
  runProgram,
  programRunner,
  runChecked,
  type RunOptions,
  type ProgramResult,
  type ProgramRunner,
} from './exec/run.js';
export { inNetns, isNetnsName } from './exec/netns.js';
export { programError } from './exec/program-errors.js';

// Site model
export type {
  AllowListLimits,
  ApiLimits,
  Backend,
  DhcpRange,
  Host,
  Network,
  Portgroup,
  RegistrationLimits,
  Reservation,
  Site,
  SshAccess,
  Uplink,
} from './site/model.js';
export { parseSite, checkSite, defaultSite, type SiteCheck } from './site/parse.js';
export { loadSite, parseSiteText } from './site/load.js';
export { PRESETS, type PresetName } from './site/presets.js';
export { SiteSchema, NetworkSchema, WELL_KNOWN_KINDS, type SiteInput, type NetworkInput } from './site/schema.js';
export { siteJsonSchema } from './site/json-schema.js';
export { findNetwork, findPortgroup, effectiveVlan } from './site/lookup.js';
export { generateMac, isUnicastMac, normalizeMac, LIBVIRT_MAC_PREFIX } from './site/mac.js';
export {
  isIpv4,
  ipv4ToInt,
  intToIpv4,
  parseIpv4Cidr,
  isNetworkCidr,
  subnetContains,
  subnetsOverlap,
  rangeSize,
  prefixToNetmask,
  type Ipv4Subnet,
} from './site/address.js';

// libvirt XML
export { renderNetworkXml } from './libvirt/network-xml.js';
export { renderInterfaceXml, type InterfaceOptions } from './libvirt/interface-xml.js';
export { parseDomainXml, type DomainInfo, type DomainNic } from './libvirt/domain-nics.js';
export {
  describeVirtualport,
  describeVlan,
  parseNetworkXml,
  type LibvirtNetwork,
  type LibvirtPortgroup,
  type LibvirtVirtualport,
  type LibvirtVlan,
} from './libvirt/network-parse.js';
export { networkUuid, uuidV5 } from './libvirt/uuid.js';

// The backend API's wire format: paths, bodies, answers, and the records they carry
export {
  API_PATHS,
  vmAllowListPath,
  vmPlacementPath,
  vmSshPath,
  vmSshSourcesPath,
  type ApiPaths,
  type PlacementBody,
  type PlacementAnswer,
  type SetPlacementAnswer,
  vmGroupPath,
  networkPeersPath,
  type VmGroupBody,
  type VmGroupAnswer,
  type PeerGroup,
  type PeersAnswer,
  type Registration,
  type AllowEntry,
  type AllowEntryBody,
  type AllowList,
  type AllowListBody,
  type AllowListAnswer,
  type AllowListsAnswer,
  type AllowProtocol,
  type PortRange,
  type NicBody,
  type RegisterBody,
  type RegisterAnswer,
  type DeregisterBody,
  type DeregisterAnswer,
  type ReconcileBody,
  type ReconcileAnswer,
  type RegistrationsAnswer,
  type ErrorAnswer,
  type SshMapping,
  type SshForwardAnswer,
  type SshForwardsAnswer,
  type SshSourcesBody,
  type VmSshAnswer,
} from './protocol/api.js';

// Backend gateway: nftables, dnsmasq
export * from './backend/nft/index.js';
export * from './backend/dnsmasq/index.js';
export { DnsmasqInputError, isDnsmasqInputError } from './errors/dnsmasq-error.js';
export { DnsmasqProcessError } from './errors/dnsmasq-process-error.js';

// Backend service: store, registry, API
export { openStore, Store } from './backend/store/store.js';
export type { Principal, Role } from './backend/store/tokens.js';
export {
  Registry,
  type NicReport,
  type RegisterResult,
  type DeregisterResult,
  type ReconcileResult,
  type RefusedNic,
  type PlacementResult,
  type AuditEvent,
  type RegistryOptions,
} from './backend/service/registry.js';
export { TableGuard, type TableGuardOptions } from './backend/service/table-guard.js';
export {
  failClosedRules,
  ruleArgs,
  missingRules,
  describeRule,
  FIRST_RULE_PREF,
  type FailClosedRule,
} from './backend/guard/rules.js';
export { classifyTableEvent, type TableEvent } from './backend/guard/table-events.js';
export type { Enforcer, EnforcedChange, EnforcedState, NicView } from './backend/service/enforcer.js';
export { GatewayEnforcer, type DnsPolicyFollower } from './backend/service/gateway-enforcer.js';
export { DnsService, type DnsServiceOptions } from './backend/dns/service.js';
export { NamePolicy, type NameVerdict, type WildcardLimits, type DomainEntry } from './backend/dns/policy.js';
export { DnsUpstreamError } from './errors/dns-upstream-error.js';
export { DnsAnswerError } from './errors/dns-answer-error.js';
export { isAllowedDomain, isDomainPattern, DOMAIN_PATTERN_EXPECTED } from './site/primitives.js';
export { DnsmasqFleet, type DnsmasqFleetOptions } from './backend/service/dnsmasq-fleet.js';
export { startBackend, type BackendOptions, type RunningBackend } from './backend/daemon.js';
export { buildApi, type ApiOptions } from './backend/api/server.js';
export { BackendClient, type BackendClientOptions } from './backend/api/client.js';
export { AdminClient } from './backend/api/admin-client.js';
export { Metrics } from './backend/api/metrics.js';
export { DataPlaneMetrics, DATAPLANE_CACHE_MS, type DataPlaneSources } from './backend/api/dataplane-metrics.js';
export { liveDataPlaneSources } from './backend/api/dataplane-sources.js';
export { readConntrackFill, CONNTRACK_SYSCTL_DIR, type ConntrackFill } from './backend/conntrack-fill.js';
export { CensusQueries, type Census } from './backend/store/census.js';
export { StoreError } from './errors/store-error.js';
export { RegistryError, type RegistryErrorCode } from './errors/registry-error.js';
export { SshAccessError, type SshAccessErrorCode } from './errors/ssh-access-error.js';
export { intersectSources, nicSources, checkNarrowing } from './backend/ssh/sources.js';
export { listeningTcpPorts, listeningPortsIn, ListeningPorts } from './backend/ssh/listening.js';
export { ApiError } from './errors/api-error.js';
export { FirewallUnavailableError } from './errors/firewall-unavailable-error.js';
export { BackendRequestError } from './errors/backend-request-error.js';

// Host side: OVS bridges and libvirt networks, doctor
export {
  portCountersArgs,
  parseVmPortCounters,
  readVmPortCounters,
  type VmPortCounters,
  type PortDirection,
} from './host/port-counters.js';
export {
  MANAGED_KEY,
  MANAGED_VALUE,
  DEFAULT_UPLINK_BRIDGE,
  type Action,
  type ObservedHost,
  type PlanOptions,
} from './host/model.js';
export {
  planHost,
  planOvs,
  planLinks,
  planBridges,
  planBridgePolicies,
  planPorts,
  planNetworks,
  reshapes,
} from './host/plan.js';
export { observeHost } from './host/observe.js';
export { applyHost, planHostNow, unconvergedError, type ApplyResult, type HostRunOptions } from './host/apply.js';
export { resolveHost } from './host/this-host.js';
export { executeActions, type ExecuteOptions } from './host/execute.js';
export { describeAction, actionSubject } from './host/describe.js';
export { hostLayout, type HostLayout } from './host/layout.js';
export { renderNmKeyfiles, type NmKeyfile } from './host/nmconnection.js';
export { checkHost } from './host/doctor/host-checks.js';
export { type PlanCheckOptions } from './host/doctor/plan-checks.js';
export { checkBackend } from './host/doctor/backend-checks.js';
export { gatherHostFacts, type HostFacts } from './host/doctor/host-facts.js';
export { gatherBackendFacts, type BackendFacts } from './host/doctor/backend-facts.js';
export { doctorExitCode, formatResults, type CheckResult, type CheckStatus } from './host/doctor/result.js';
export { HostCommandError } from './errors/host-command-error.js';
export { OvsVsctlError } from './errors/ovs-vsctl-error.js';
export { IpError } from './errors/ip-error.js';
export { NmcliError } from './errors/nmcli-error.js';
export { VirshError } from './errors/virsh-error.js';
export { HostApplyError } from './errors/host-apply-error.js';
export { BackendApplyError } from './errors/backend-apply-error.js';
export { SysctlError } from './errors/sysctl-error.js';
export { SystemctlError } from './errors/systemctl-error.js';

// Backend set-up: the gateway interfaces, forwarding and sysctls, the unit
export type { BackendAction, BackendPlanOptions, ObservedBackend, ObservedUnit } from './backend/setup/model.js';
export {
  planBackend,
  planGatewayLinks,
  planEdges,
  planSysctls,
  planSysctlFile,
  planUnit,
  gatewayInterfaces,
  renderSysctlFile,
  type GatewayInterface,
} from './backend/setup/plan.js';
export { observeBackend, type BackendObserveOptions } from './backend/setup/observe.js';
export { executeBackendActions, backendCommandsFor, type BackendExecuteOptions } from './backend/setup/execute.js';
export {
  applyBackend,
  planBackendNow,
  backendUnconvergedError,
  type BackendApplyResult,
  type BackendRunOptions,
} from './backend/setup/apply.js';
export { describeBackendAction, backendActionSubject } from './backend/setup/describe.js';
export {
  describeLinkAction,
  linkCommands,
  nmConnectionName,
  type LinkAction,
  type CreateVlanInterfaceAction,
  type SetLinkUpAction,
  type SetLinkMtuAction,
} from './exec/link-actions.js';
export { renderBackendNmKeyfiles } from './backend/setup/nmconnection.js';
export {
  GATEWAY_INTERFACE_SETTINGS,
  IP_FORWARD,
  gatewaySysctls,
  effectiveSetting,
  SERVICE_ASSERTED_KEYS,
  serviceAssertedSettings,
  type GatewaySettingKey,
  type SysctlSetting,
} from './backend/sysctls.js';
export { backendSetupChecks } from './host/doctor/backend-plan-checks.js';

// Port security: the flow programs on each VM's OVS port, and their sync
export {
  renderPortProgram,
  renderBridgeProgram,
  renderGroupProgram,
  bundleText,
  programAddLines,
  stampFlow,
  linkLocalOf,
  type FlowProgram,
  type PortSpec,
  type BridgeSpec,
  type GroupSpec,
  type PeersPolicy,
  type Ipv6Policy,
} from './portsec/render.js';
export { cookieOf, cookieText, exactCookie, parseCookie, ALL_OURS, TABLE, type ProgramKind } from './portsec/cookie.js';
export { policyOf, policyExternalIds, POLICY_KEYS, type BridgePolicy } from './portsec/policy.js';
export { bridgeIntent, type BridgeIntent, type NetworkView, type GroupView } from './portsec/intent.js';
export { planFlows, describeFlowAction, type FlowAction } from './portsec/plan.js';
export { parseFlowDump, type FlowObservation } from './portsec/dump.js';
export { observeForPin, pinNics, unpinNics, type PinNic, type PinOutcome, type PinContext } from './portsec/pin.js';
export { readOvsdb } from './portsec/ovsdb.js';
export { syncFlows, type FlowSyncResult } from './host/flows/sync.js';
export { FlowInputError } from './errors/flow-input-error.js';
export { OvsOfctlError } from './errors/ovs-ofctl-error.js';
export { OvsdbReadError } from './errors/ovsdb-read-error.js';

// VM launcher helpers: NICs and the allow-list in a domain definition
export { addDomainInterface, removeDomainInterface, domainInterfaceMacs } from './libvirt/domain-edit.js';

// The libvirt hooks (the executables are hooks/qemu and hooks/network; see `ticrypt-net hook install`)
export type { HookConfig, HookNetwork } from './hook/setup/config-types.js';
export { parseHookConfigText, loadHookConfig, hookConfigTemplate, HookConfigSchema } from './hook/setup/config.js';
export { installHooks, type InstallOptions, type InstallReport } from './hook/setup/install.js';
export { reconcileHost, type ReconcileReport } from './hook/agent/reconcile.js';
export { Spool, type SpoolEntry } from './hook/agent/spool.js';
export { nextGeneration } from './hook/agent/generation.js';
export { scanDomainXml, type HookDomain, type HookDomainNic } from './hook/agent/domain-scan.js';
export { HookConfigError } from './errors/hook-config-error.js';
export { HookInstallError } from './errors/hook-install-error.js';
export { HookSpoolError } from './errors/hook-spool-error.js';

// Audit store: hash-chained day files of audit records, retention, verify, query, the reader's cursor
export { AuditStoreSchema, DEFAULT_AUDIT_STORE, type AuditStoreSettings } from './site/audit-store.js';
export { AuditStore, type AuditStoreOptions, type AuditStoreStats } from './backend/audit/day-store.js';
export { CursorFile, ReaderCursor } from './backend/audit/cursor.js';
export { verifyChain, type VerifyReport, type ChainBreak, type DayRange, type Anchor } from './backend/audit/verify.js';
export { registerAuditStoreMetrics } from './backend/audit/store-metrics.js';
export { queryAudit, type AuditQuery, type QueryHit } from './backend/audit/query.js';
export { GENESIS, encodeLines, parseLine, lineHash, type StoredLine, type ChainHead } from './backend/audit/line.js';
export type { RetentionEvent, TornEvent, RemovedFile, StoreEvent } from './backend/audit/store-event.js';
export { AuditStoreError } from './errors/audit-store-error.js';
export { AuditCursorError } from './errors/audit-cursor-error.js';
export { AuditChainError } from './errors/audit-chain-error.js';
