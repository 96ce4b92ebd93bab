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

// Errors
export { TicryptNetError, isTicryptNetError } from './errors/ticrypt-net-error.js';
export { SiteError, type SiteIssue } from './errors/site-error.js';
export { XmlParseError } from './errors/xml-parse-error.js';
export { UsageError } from './errors/usage-error.js';

// Site model
export type { Backend, DhcpRange, Host, Network, Portgroup, Reservation, Site, Uplink } from './site/model.js';
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
export { parseNetworkXml, type LibvirtNetwork } from './libvirt/network-parse.js';
export { networkUuid, uuidV5 } from './libvirt/uuid.js';
