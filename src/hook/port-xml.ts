import type { DomainInfo } from '../libvirt/domain-nics.js';
import { attr, child, childText, readXmlRoot } from '../libvirt/xml-read.js';
import { isUnicastMac, normalizeMac } from '../site/mac.js';

/**
 * Read what libvirt hands the network hook at `port-created` / `port-deleted`:
 * `<hookData><network>...</network><networkport>...</networkport></hookData>`,
 * as a one-NIC {@link DomainInfo} (the port's owner VM and its MAC on that
 * network), so the qemu hook's NIC selection applies unchanged.
 *
 * @throws {XmlParseError} `E_XML_PARSE` when it is not XML with a `<hookData>` root.
 */
export function parsePortHookData(text: string, networkArg: string): DomainInfo {
  const root = readXmlRoot(text, 'hookData', 'network hook data');
  const network = childText(child(root, 'network'), 'name') ?? networkArg;
  const port = child(root, 'networkport');
  const owner = child(port, 'owner');
  const mac = attr(child(port, 'mac'), 'address');
  const bridge = attr(child(port, 'plug'), 'bridge');
  const info: { name?: string; uuid?: string } = {};
  const name = childText(owner, 'name');
  const uuid = childText(owner, 'uuid');
  if (name !== undefined) info.name = name;
  if (uuid !== undefined) info.uuid = uuid;
  if (!port) return { ...info, nics: [] };
  return {
    ...info,
    nics: [
      {
        type: 'network',
        network,
        vlanTags: [],
        vlanTrunk: false,
        ...(mac !== undefined && isUnicastMac(mac) ? { mac: normalizeMac(mac) } : {}),
        ...(bridge === undefined ? {} : { bridge }),
      },
    ],
  };
}
