import { BoundaryInputError } from './boundary-input-error.js';

/**
 * A value about to be written into an OpenFlow flow (a MAC, an address, an
 * OpenFlow port number, a VLAN tag, a group id) failed its check at the flow
 * renderer's boundary: nothing unchecked reaches `ovs-ofctl`.
 *
 * @example
 * ```
 * ovs-ofctl input port.mac: expected a unicast MAC address like 52:54:00:12:34:56, found "ff:ff:ff:ff:ff:ff"
 * ```
 */
export class FlowInputError extends BoundaryInputError {
  constructor(field: string, expected: string, found: unknown) {
    super('E_FLOW_INPUT', 'ovs-ofctl', field, expected, found);
    this.name = 'FlowInputError';
  }
}
