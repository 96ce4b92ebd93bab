import type { ObservedBackend } from '../../src/backend/setup/model.js';
import { gatewayInterfaces, renderSysctlFile } from '../../src/backend/setup/plan.js';
import { gatewaySysctls, GATEWAY_SETTING_KEYS, interfaceKey } from '../../src/backend/sysctls.js';
import type { Site } from '../../src/site/model.js';

/** The unit text the converged fixture has installed (and plans pass as `unitText`). */
export const UNIT_TEXT = '[Unit]\nDescription=ticrypt-net backend (test)\n';

/** What `backend apply` leaves on a backend (systemd running, the unit installed and enabled). */
export function convergedBackend(site: Site): ObservedBackend {
  const sysctls: Record<string, number> = {};
  for (const key of GATEWAY_SETTING_KEYS) sysctls[interfaceKey('all', key)] = 0;
  for (const s of gatewaySysctls(site)) sysctls[s.key] = s.value;
  sysctls['net/ipv6/conf/all/disable_ipv6'] = 0;
  return {
    links: [
      { name: site.backend.trunk, up: true, addresses: [], mtu: 9000 },
      { name: site.backend.uplink, up: true, addresses: ['203.0.113.1/24'], mtu: 1500 },
      { name: 'mgmt0', up: true, addresses: [`${site.backend.management.address}/24`], mtu: 1500 },
      ...gatewayInterfaces(site).map((gw) => ({
        name: gw.interface,
        up: true,
        addresses: [gw.address],
        mtu: gw.mtu ?? 1500,
        ...(gw.vlan === undefined ? {} : { kind: 'vlan', vlanId: gw.vlan.id, parent: gw.vlan.parent }),
      })),
    ],
    sysctls,
    sysctlFile: renderSysctlFile(site),
    networkManager: false,
    systemd: true,
    unit: { text: UNIT_TEXT, enabled: true },
  };
}
