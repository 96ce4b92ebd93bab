/**
 * The API's validators of the wire format in `./api.ts`: one zod schema per
 * body, each checked by the compiler to yield that body's type. A refused
 * value's issue names the field, what was expected and what was found.
 *
 * For: the backend API (`src/backend/api/server.ts`). May not: be imported by
 * the hook (zod costs its bundle ~40 ms of loading), or reach the store or
 * the kernel: it only decides what a request means.
 */
import { z } from 'zod';
import { isIpv4, isNetworkCidr, parseIpv4Cidr } from '../site/address.js';
import {
  DOMAIN_PATTERN_EXPECTED,
  expect as expectMsg,
  HostName,
  isDomainPattern,
  Mac,
  Name,
  PortRangeText,
} from '../site/primitives.js';
import type {
  AllowEntry,
  AllowEntryBody as AllowEntryJson,
  DeregisterBody as DeregisterJson,
  NicBody as NicJson,
  PlacementBody as PlacementJson,
  ReconcileBody as ReconcileJson,
  RegisterBody as RegisterJson,
  SshSourcesBody as SshSourcesJson,
} from './api.js';

/**
 * At most this many entries are parsed in one allow-list request; the site's
 * `backend.allowLists.entries` (default 256) is the limit that applies.
 */
export const MAX_ALLOW_ENTRIES = 10_000;
/** At most this many hosts in one placement (one, or two during a migration). */
export const MAX_PLACEMENT_HOSTS = 8;
/** At most this many NICs in one reconcile. */
export const MAX_RECONCILE_NICS = 10_000;

/** A libvirt domain UUID, lower-cased. */
export const VmUuid = z
  .string(expectMsg('a UUID like 0b1d2c3e-0000-4000-8000-000000000007'))
  .regex(
    /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/,
    expectMsg('a UUID like 0b1d2c3e-0000-4000-8000-000000000007'),
  )
  .transform((v) => v.toLowerCase());

/** A VM name as logged: printable, no spaces or quotes, at most 128 characters. */
export const VmName = z
  .string(expectMsg("a VM name of 1-128 letters, digits or '_.+:@-'"))
  .regex(/^[A-Za-z0-9_.+:@-]{1,128}$/, expectMsg("a VM name of 1-128 letters, digits or '_.+:@-'"));

/** A per-host event counter. */
export const Generation = z
  .number(expectMsg('an integer 0 or more'))
  .int(expectMsg('an integer 0 or more'))
  .min(0, expectMsg('an integer 0 or more'))
  .max(Number.MAX_SAFE_INTEGER, expectMsg('an integer 0 or more'));

/** A NIC as a host reports it. */
export const NicBody = z.strictObject({ vmUuid: VmUuid, vmName: VmName, mac: Mac, network: Name });

/** `POST /v1/register`. */
export const RegisterBody = NicBody.extend({
  generation: Generation,
  migration: z.literal('incoming', expectMsg("'incoming' (or no migration field)")).optional(),
});

/** `POST /v1/deregister`. */
export const DeregisterBody = z.strictObject({ mac: Mac, network: Name, generation: Generation });

/** `POST /v1/reconcile`. */
export const ReconcileBody = z.strictObject({
  generation: Generation,
  nics: z
    .array(NicBody, expectMsg('a list of NICs'))
    .max(MAX_RECONCILE_NICS, expectMsg(`at most ${MAX_RECONCILE_NICS} NICs`)),
});

// What each schema yields is the wire type `./api.ts` names: a change to one that the other lacks fails to compile.
type Yields<S extends z.ZodType, T> = [z.output<S>] extends [T]
  ? [keyof T] extends [keyof z.output<S>]
    ? true
    : never
  : never;
const checked: [
  Yields<typeof NicBody, NicJson>,
  Yields<typeof RegisterBody, RegisterJson>,
  Yields<typeof DeregisterBody, DeregisterJson>,
  Yields<typeof ReconcileBody, ReconcileJson>,
] = [true, true, true, true];
void checked;

const Protocol = z.enum(['tcp', 'udp', 'icmp', 'any'], expectMsg("'tcp', 'udp', 'icmp' or 'any'"));

const ADDRESS_EXPECTED = 'an IPv4 address or network like 203.0.113.10 or 203.0.113.0/24';
const isAddressOrNetwork = (v: string) => isIpv4(v) || (parseIpv4Cidr(v) !== undefined && isNetworkCidr(v));
/** At most this many special-use ranges on one domain entry. */
export const MAX_SPECIAL_RANGES = 16;

/** One allow entry as the API takes it: `{ address | domain, protocol, ports?, specialRanges? }`. */
export const AllowEntryBody = z
  .strictObject({
    address: z.string(expectMsg(ADDRESS_EXPECTED)).refine(isAddressOrNetwork, expectMsg(ADDRESS_EXPECTED)).optional(),
    domain: z
      .string(expectMsg(DOMAIN_PATTERN_EXPECTED))
      .refine(isDomainPattern, expectMsg(DOMAIN_PATTERN_EXPECTED))
      .optional(),
    protocol: Protocol,
    ports: PortRangeText.optional(),
    specialRanges: z
      .array(
        z.string(expectMsg(ADDRESS_EXPECTED)).refine(isAddressOrNetwork, expectMsg(ADDRESS_EXPECTED)),
        expectMsg(`a list of at most ${MAX_SPECIAL_RANGES} IPv4 networks`),
      )
      .max(MAX_SPECIAL_RANGES, expectMsg(`a list of at most ${MAX_SPECIAL_RANGES} IPv4 networks`))
      .optional(),
  })
  .superRefine((entry, ctx) => {
    if ((entry.address === undefined) === (entry.domain === undefined)) {
      ctx.addIssue({
        code: 'custom',
        message:
          'expected exactly one of address or domain, found ' + (entry.address === undefined ? 'neither' : 'both'),
      });
    }
    if (entry.specialRanges !== undefined && entry.domain === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['specialRanges'],
        message: 'expected specialRanges only on a domain entry, found them on an address entry',
      });
    }
    if (entry.ports !== undefined && entry.protocol !== 'tcp' && entry.protocol !== 'udp') {
      ctx.addIssue({
        code: 'custom',
        path: ['ports'],
        message: `expected no ports with protocol ${entry.protocol}, found ports`,
      });
    }
  })
  .transform((entry): AllowEntry => {
    const ports = entry.ports === undefined ? {} : { ports: entry.ports };
    const special = entry.specialRanges === undefined ? {} : { specialRanges: entry.specialRanges };
    return entry.address !== undefined
      ? { type: 'address', address: entry.address, protocol: entry.protocol, ...ports }
      : { type: 'domain', domain: entry.domain ?? '', protocol: entry.protocol, ...ports, ...special };
  });

/** `PUT /v1/vms/:uuid/allow-list`. */
export const AllowListBody = z.strictObject({
  entries: z
    .array(AllowEntryBody, expectMsg('a list of allow entries'))
    .max(MAX_ALLOW_ENTRIES, expectMsg(`at most ${MAX_ALLOW_ENTRIES} entries`)),
});

/** `PUT /v1/vms/:uuid/placement`: the hosts the VM may run on (empty: none). */
export const PlacementBody = z.strictObject({
  hosts: z
    .array(HostName, expectMsg('a list of host names'))
    .max(MAX_PLACEMENT_HOSTS, expectMsg(`at most ${MAX_PLACEMENT_HOSTS} hosts`)),
});

const placementChecked: Yields<typeof PlacementBody, PlacementJson> = true;
void placementChecked;

/** At most this many client networks in one VM's SSH sources. */
export const MAX_SSH_SOURCES = 64;

const SOURCE_EXPECTED = 'an IPv4 network like 203.0.113.0/24 (or an address)';

/** `PUT /v1/vms/:uuid/ssh/sources`: client networks, an address meaning its /32. */
export const SshSourcesBody = z.strictObject({
  sources: z
    .array(
      z
        .string(expectMsg(SOURCE_EXPECTED))
        .refine((v) => isIpv4(v) || (parseIpv4Cidr(v) !== undefined && isNetworkCidr(v)), expectMsg(SOURCE_EXPECTED))
        .transform((v) => (v.includes('/') ? v : `${v}/32`)),
      expectMsg(`a list of at most ${MAX_SSH_SOURCES} IPv4 networks`),
    )
    .max(MAX_SSH_SOURCES, expectMsg(`a list of at most ${MAX_SSH_SOURCES} IPv4 networks`)),
});

const sshSourcesChecked: Yields<typeof SshSourcesBody, SshSourcesJson> = true;
void sshSourcesChecked;

/** Route parameters naming a VM. */
export const VmParams = z.strictObject({ uuid: VmUuid });

/** The API's view of an allow entry, as accepted (ports as `'from-to'` or a number). */
export function entryToBody(entry: AllowEntry): AllowEntryJson {
  const target = entry.type === 'address' ? { address: entry.address } : { domain: entry.domain };
  const ports =
    entry.ports === undefined
      ? {}
      : { ports: entry.ports.from === entry.ports.to ? entry.ports.from : `${entry.ports.from}-${entry.ports.to}` };
  const special =
    entry.type === 'domain' && entry.specialRanges !== undefined ? { specialRanges: entry.specialRanges } : {};
  return { ...target, protocol: entry.protocol, ...ports, ...special };
}

/** `PUT /v1/vms/:uuid/group`: a group name, or `null` for none. */
export const VmGroupBody = z.strictObject({ group: Name.nullable() });

/** Route parameters naming a network. */
export const NetworkParams = z.strictObject({ name: Name });
