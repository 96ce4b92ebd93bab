/**
 * The backend's dnsmasq: config per network and host entries (pure), the host
 * entry directory and the dnsmasq process (edges). Every export is named here.
 */
export { renderDnsmasqConfig, type DnsmasqConfigOptions, type DnsmasqLog } from './config.js';
export { renderHostEntry, hostEntryFileName, macFromHostEntryFileName } from './host-entry.js';
export { HostsDir, type HostEntryWrite, type HostsDirSync, type Reload } from './hosts-dir.js';
export { HostEntries, hostEntriesPaths, type HostEntriesPaths } from './host-entries.js';
export {
  DnsmasqProcess,
  checkDnsmasqConfig,
  readPidFile,
  signalPid,
  stopPid,
  pidReleased,
  type DnsmasqExit,
  type DnsmasqRunOptions,
  type DnsmasqStartOptions,
} from './process.js';
export { netnsWrapper, type CommandWrapper } from '../../exec/netns.js';
