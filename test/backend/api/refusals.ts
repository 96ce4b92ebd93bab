/** One request the API must refuse, and how. */
export interface Refusal {
  readonly name: string;
  readonly method: 'GET' | 'POST' | 'PUT';
  readonly url: string;
  /** Which token to send: a host's, the other host's, the admin's, the metrics scraper's, a forged one, or none. */
  readonly auth: 'host' | 'other-host' | 'admin' | 'metrics' | 'none' | 'forged' | 'malformed';
  readonly body?: unknown;
  /** Raw payload instead of JSON (for bad JSON and oversized bodies). */
  readonly raw?: string;
  readonly status: number;
  readonly code: string;
}

const VM = '0b1d2c3e-0000-4000-8000-000000000001';
const OTHER_VM = '0b1d2c3e-0000-4000-8000-000000000099';
const UNPLACED_VM = '0b1d2c3e-0000-4000-8000-000000000077';
const nic = { vmUuid: VM, vmName: 'vm-1', mac: '52:54:00:00:00:01', network: 'secure', generation: 1 };

/**
 * Where the VM launcher placed the refusals' VMs: `nic`'s VM on kvm-1 (the
 * "host" token), another VM on kvm-2 (the "other-host" token). The tests set
 * these before registering `nic`.
 */
export const PLACEMENTS: readonly (readonly [string, readonly string[]])[] = [
  [VM, ['kvm-1']],
  [OTHER_VM, ['kvm-2']],
];

/**
 * At least 20 refused requests. The tests that use it first place the VMs
 * ({@link PLACEMENTS}) and register `nic` from "host", then check each
 * refusal leaves store and firewall unchanged.
 */
export const REFUSALS: readonly Refusal[] = [
  {
    name: 'no token',
    method: 'POST',
    url: '/v1/register',
    auth: 'none',
    body: nic,
    status: 401,
    code: 'E_UNAUTHENTICATED',
  },
  {
    name: 'forged token',
    method: 'POST',
    url: '/v1/register',
    auth: 'forged',
    body: nic,
    status: 401,
    code: 'E_UNAUTHENTICATED',
  },
  {
    name: 'malformed header',
    method: 'POST',
    url: '/v1/register',
    auth: 'malformed',
    body: nic,
    status: 401,
    code: 'E_UNAUTHENTICATED',
  },
  {
    name: 'admin token on a host route',
    method: 'POST',
    url: '/v1/register',
    auth: 'admin',
    body: nic,
    status: 403,
    code: 'E_FORBIDDEN',
  },
  {
    name: 'host token on an admin route',
    method: 'PUT',
    url: `/v1/vms/${VM}/allow-list`,
    auth: 'host',
    body: { entries: [] },
    status: 403,
    code: 'E_FORBIDDEN',
  },
  {
    name: 'another VM claiming a registered MAC',
    method: 'POST',
    url: '/v1/register',
    auth: 'other-host',
    body: { ...nic, vmUuid: OTHER_VM },
    status: 409,
    code: 'E_MAC_CONFLICT',
  },
  {
    name: 'another host registering a NIC of a VM placed elsewhere',
    method: 'POST',
    url: '/v1/register',
    auth: 'other-host',
    body: { ...nic, generation: 99 },
    status: 403,
    code: 'E_NOT_PLACED',
  },
  {
    name: 'another host registering its own MAC under a VM placed elsewhere',
    method: 'POST',
    url: '/v1/register',
    auth: 'other-host',
    body: { ...nic, mac: '52:54:00:00:00:66' },
    status: 403,
    code: 'E_NOT_PLACED',
  },
  {
    name: 'a host registering a VM placed nowhere',
    method: 'POST',
    url: '/v1/register',
    auth: 'host',
    body: { ...nic, vmUuid: UNPLACED_VM, mac: '52:54:00:00:00:77' },
    status: 403,
    code: 'E_NOT_PLACED',
  },
  {
    name: 'bad MAC',
    method: 'POST',
    url: '/v1/register',
    auth: 'host',
    body: { ...nic, mac: '52:54:00:zz:00:01' },
    status: 400,
    code: 'E_REQUEST_INVALID',
  },
  {
    name: 'multicast MAC',
    method: 'POST',
    url: '/v1/register',
    auth: 'host',
    body: { ...nic, mac: '01:00:5e:00:00:01' },
    status: 400,
    code: 'E_REQUEST_INVALID',
  },
  {
    name: 'unknown network',
    method: 'POST',
    url: '/v1/register',
    auth: 'host',
    body: { ...nic, mac: '52:54:00:00:00:02', network: 'nonet' },
    status: 422,
    code: 'E_UNKNOWN_NETWORK',
  },
  {
    name: 'network name with injection',
    method: 'POST',
    url: '/v1/register',
    auth: 'host',
    body: { ...nic, network: 'secure; flush ruleset' },
    status: 400,
    code: 'E_REQUEST_INVALID',
  },
  {
    name: 'VM name with injection',
    method: 'POST',
    url: '/v1/register',
    auth: 'host',
    body: { ...nic, vmName: 'x"; nft flush ruleset; "' },
    status: 400,
    code: 'E_REQUEST_INVALID',
  },
  {
    name: 'VM name with a newline',
    method: 'POST',
    url: '/v1/register',
    auth: 'host',
    body: { ...nic, vmName: 'vm\naudit forged' },
    status: 400,
    code: 'E_REQUEST_INVALID',
  },
  {
    name: 'bad VM UUID',
    method: 'POST',
    url: '/v1/register',
    auth: 'host',
    body: { ...nic, vmUuid: '../../etc/passwd' },
    status: 400,
    code: 'E_REQUEST_INVALID',
  },
  {
    name: 'negative generation',
    method: 'POST',
    url: '/v1/register',
    auth: 'host',
    body: { ...nic, generation: -1 },
    status: 400,
    code: 'E_REQUEST_INVALID',
  },
  {
    name: 'unknown field',
    method: 'POST',
    url: '/v1/register',
    auth: 'host',
    body: { ...nic, ip: '192.168.129.5' },
    status: 400,
    code: 'E_REQUEST_INVALID',
  },
  {
    name: 'missing fields',
    method: 'POST',
    url: '/v1/register',
    auth: 'host',
    body: { mac: nic.mac },
    status: 400,
    code: 'E_REQUEST_INVALID',
  },
  {
    name: 'not JSON',
    method: 'POST',
    url: '/v1/register',
    auth: 'host',
    raw: '{"vmUuid":',
    status: 400,
    code: 'FST_ERR_CTP_INVALID_JSON_BODY',
  },
  {
    name: 'oversized body',
    method: 'POST',
    url: '/v1/reconcile',
    auth: 'host',
    raw: JSON.stringify({ generation: 2, nics: [], pad: 'x'.repeat(2 * 1024 * 1024) }),
    status: 413,
    code: 'FST_ERR_CTP_BODY_TOO_LARGE',
  },
  {
    name: 'other host deregistering',
    method: 'POST',
    url: '/v1/deregister',
    auth: 'forged',
    body: { mac: nic.mac, network: 'secure', generation: 9 },
    status: 401,
    code: 'E_UNAUTHENTICATED',
  },
  {
    name: 'allow entry with injection in the domain',
    method: 'PUT',
    url: `/v1/vms/${VM}/allow-list`,
    auth: 'admin',
    body: { entries: [{ domain: 'pypi.org/1.2.3.4\nserver=/#/', protocol: 'tcp' }] },
    status: 400,
    code: 'E_REQUEST_INVALID',
  },
  {
    name: 'allow entry with a bad CIDR',
    method: 'PUT',
    url: `/v1/vms/${VM}/allow-list`,
    auth: 'admin',
    body: { entries: [{ address: '203.0.113.7/24', protocol: 'tcp', ports: 443 }] },
    status: 400,
    code: 'E_REQUEST_INVALID',
  },
  {
    name: 'allow entry with a bad port range',
    method: 'PUT',
    url: `/v1/vms/${VM}/allow-list`,
    auth: 'admin',
    body: { entries: [{ address: '203.0.113.7', protocol: 'tcp', ports: '900-80' }] },
    status: 400,
    code: 'E_REQUEST_INVALID',
  },
  {
    name: 'ports on icmp',
    method: 'PUT',
    url: `/v1/vms/${VM}/allow-list`,
    auth: 'admin',
    body: { entries: [{ address: '203.0.113.7', protocol: 'icmp', ports: 1 }] },
    status: 400,
    code: 'E_REQUEST_INVALID',
  },
  {
    name: 'both address and domain',
    method: 'PUT',
    url: `/v1/vms/${VM}/allow-list`,
    auth: 'admin',
    body: { entries: [{ address: '203.0.113.7', domain: 'pypi.org', protocol: 'tcp' }] },
    status: 400,
    code: 'E_REQUEST_INVALID',
  },
  {
    name: 'too many allow entries',
    method: 'PUT',
    url: `/v1/vms/${VM}/allow-list`,
    auth: 'admin',
    body: {
      entries: Array.from({ length: 257 }, (_, i) => ({
        address: `203.0.113.${i % 250}`,
        protocol: 'tcp',
        ports: 1 + i,
      })),
    },
    status: 422,
    code: 'E_ALLOW_LIST_TOO_LARGE',
  },
  {
    name: 'an allow entry that expands to too many elements',
    method: 'PUT',
    url: `/v1/vms/${VM}/allow-list`,
    auth: 'admin',
    body: { entries: [{ address: '0.0.0.0/1', protocol: 'tcp', ports: '2-65534' }] },
    status: 422,
    code: 'E_ALLOW_LIST_TOO_LARGE',
  },
  {
    name: 'a placement with an injected host name',
    method: 'PUT',
    url: `/v1/vms/${VM}/placement`,
    auth: 'admin',
    body: { hosts: ['kvm-1; flush ruleset'] },
    status: 400,
    code: 'E_REQUEST_INVALID',
  },
  {
    name: 'a host token setting a placement',
    method: 'PUT',
    url: `/v1/vms/${VM}/placement`,
    auth: 'other-host',
    body: { hosts: ['kvm-2'] },
    status: 403,
    code: 'E_FORBIDDEN',
  },
  {
    name: 'metrics without a token',
    method: 'GET',
    url: '/metrics',
    auth: 'none',
    status: 401,
    code: 'E_UNAUTHENTICATED',
  },
  {
    name: 'a metrics token on a host route',
    method: 'POST',
    url: '/v1/register',
    auth: 'metrics',
    body: nic,
    status: 403,
    code: 'E_FORBIDDEN',
  },
  {
    name: 'bad VM UUID in the path',
    method: 'PUT',
    url: '/v1/vms/not-a-uuid/allow-list',
    auth: 'admin',
    body: { entries: [] },
    status: 400,
    code: 'E_REQUEST_INVALID',
  },
];

/** The registration every refusal test starts from. */
export const BASE_NIC = nic;
