/**
 * One registered VM NIC as a dnsmasq `dhcp-hostsdir` file: pure, data to text.
 */
import { ipv4ToInt, parseIpv4Cidr } from '../../site/address.js';
import { dnsmasqCheck } from '../checks.js';
import type { Network } from '../../site/model.js';
import type { Registration } from '../../protocol/api.js';

/**
 * The host entry file name for a MAC: the MAC with `-` for `:`
 * (`52-54-00-12-34-56`). Safe as a file name, one file per MAC, and never
 * starting with `.` (dnsmasq skips dotfiles, which is what temporary files use).
 *
 * @throws {DnsmasqInputError} when `mac` is not a lower-case unicast MAC.
 */
export function hostEntryFileName(mac: string): string {
  return dnsmasqCheck.mac('mac', mac).replaceAll(':', '-');
}

/**
 * The MAC a host entry file name stands for, or `undefined` when the name is
 * not one {@link hostEntryFileName} makes (a stray file, a temporary file).
 */
export function macFromHostEntryFileName(fileName: string): string | undefined {
  if (!/^[0-9a-f]{2}(?:-[0-9a-f]{2}){5}$/.test(fileName)) return undefined;
  return fileName.replaceAll('-', ':');
}

/**
 * The content of a registration's host entry file: one `dhcp-host` line without
 * the `dhcp-host=` (`<mac>,id:*,<ip>`). `id:*` makes dnsmasq match on the MAC
 * alone, whatever client id the guest sends (iPXE and the OS differ). No host
 * name (the VM name is for logs only) and no lease time (the network's applies).
 *
 * With `network`, the address must also be a host address of its subnet other
 * than the gateway.
 *
 * @throws {DnsmasqInputError} `E_DNSMASQ_INPUT` on a bad MAC or address.
 * @example renderHostEntry({ ...registration, mac: '52:54:00:12:34:56', ip: '192.168.129.7' })
 * // '52:54:00:12:34:56,id:*,192.168.129.7\n'
 */
export function renderHostEntry(registration: Pick<Registration, 'mac' | 'ip'>, network?: Network): string {
  const mac = dnsmasqCheck.mac('registration.mac', registration.mac);
  const ip = dnsmasqCheck.ipv4('registration.ip', registration.ip);
  if (network !== undefined) {
    const subnet = parseIpv4Cidr(network.subnet);
    const value = ipv4ToInt(ip);
    if (subnet === undefined || value <= subnet.first || value >= subnet.last || ip === network.gateway) {
      throw dnsmasqCheck.refuse(
        'registration.ip',
        `a host address of ${network.subnet} other than the gateway ${network.gateway}`,
        ip,
      );
    }
  }
  return `${mac},id:*,${ip}\n`;
}
