/**
 * The checks every value passes before it is written into a flow: MACs,
 * IPv4 addresses, OpenFlow port numbers, VLAN tags, group ids. Pure. May not:
 * correct a value (a wrong one is refused with {@link FlowInputError}).
 */
import { FlowInputError } from '../errors/flow-input-error.js';
import { isIpv4 } from '../site/address.js';
import { isUnicastMac, normalizeMac } from '../site/mac.js';

/** A unicast MAC, lower-cased. @throws {FlowInputError} `E_FLOW_INPUT` */
export function flowMac(field: string, value: unknown): string {
  if (typeof value !== 'string' || !isUnicastMac(value)) {
    throw new FlowInputError(field, 'a unicast MAC address like 52:54:00:12:34:56', value);
  }
  return normalizeMac(value);
}

/** A dotted-quad IPv4 address. @throws {FlowInputError} `E_FLOW_INPUT` */
export function flowIpv4(field: string, value: unknown): string {
  if (typeof value !== 'string' || !isIpv4(value)) {
    throw new FlowInputError(field, 'an IPv4 address like 192.168.129.10', value);
  }
  return value;
}

/** An integer in `[min, max]`. @throws {FlowInputError} `E_FLOW_INPUT` */
export function flowInteger(field: string, value: unknown, min: number, max: number, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new FlowInputError(field, `${what} ${min}-${max}`, value);
  }
  return value;
}

/** An OpenFlow port number of a bridge port (1-65279; not the bridge's own LOCAL). @throws {FlowInputError} `E_FLOW_INPUT` */
export function flowOfport(field: string, value: unknown): number {
  return flowInteger(field, value, 1, 0xfeff, 'an OpenFlow port number');
}

/** A VLAN tag (0-4095; 0 for untagged). @throws {FlowInputError} `E_FLOW_INPUT` */
export function flowVlan(field: string, value: unknown): number {
  return flowInteger(field, value, 0, 4095, 'a VLAN id');
}
