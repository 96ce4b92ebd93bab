/**
 * `hook.yaml`'s schema and validation (yaml + zod), and the commented template
 * `hook install` writes. Bundled on its own (`dist/hook/hook-config.cjs`) and
 * loaded by a hook run only when the file changed; also used by `hook check`
 * and `host flush|reconcile`. May not: be imported by the hook call's bundle.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { HookConfigError } from '../../errors/hook-config-error.js';
import { fromZodIssues } from '../../site/issues.js';
import { readYaml } from '../../site/yaml.js';
import { expect as expectMsg, Name, HostName, InterfaceName } from '../../site/primitives.js';
import { DEFAULT_HOOK_MS, DEFAULT_REQUEST_MS, type HookConfig, type HookNetwork } from './config-types.js';
import { DEFAULT_BACKEND_URL, DEFAULT_SPOOL_DIR } from '../../names.js';

const AbsolutePath = z
  .string(expectMsg('an absolute path'))
  .refine((v) => v.startsWith('/') && !v.includes('\0'), expectMsg('an absolute path'));

const Url = z.string(expectMsg(`an http(s) URL like ${DEFAULT_BACKEND_URL}`)).refine(
  (v) => {
    try {
      const url = new URL(v);
      return (url.protocol === 'https:' || url.protocol === 'http:') && url.username === '' && url.password === '';
    } catch {
      return false;
    }
  },
  expectMsg(`an http(s) URL like ${DEFAULT_BACKEND_URL}`),
);

const Millis = (min: number, max: number) => {
  const error = expectMsg(`an integer number of milliseconds ${min}-${max}`);
  return z.number(error).int(error).min(min, error).max(max, error);
};

const NetworkEntry = z.strictObject({
  name: Name,
  bridge: InterfaceName.optional(),
  requireRegistration: z.boolean(expectMsg('true or false')).default(false),
});

/** The shape of `hook.yaml`; see {@link HookConfig} for what each field means. */
export const HookConfigSchema = z
  .strictObject(
    {
      hostId: HostName,
      backend: z.strictObject(
        {
          url: Url,
          caFile: AbsolutePath.optional(),
          tokenFile: AbsolutePath,
          insecure: z.boolean(expectMsg('true or false')).default(false),
        },
        expectMsg('a mapping with url, tokenFile and optionally caFile and insecure'),
      ),
      networks: z.array(NetworkEntry, expectMsg('a list of networks')).min(1, expectMsg('at least one network')),
      timeouts: z
        .strictObject({
          requestMs: Millis(50, 60_000).default(DEFAULT_REQUEST_MS),
          hookMs: Millis(200, 120_000).default(DEFAULT_HOOK_MS),
        })
        .default({ requestMs: DEFAULT_REQUEST_MS, hookMs: DEFAULT_HOOK_MS }),
      spoolDir: AbsolutePath.default(DEFAULT_SPOOL_DIR),
      syslog: z.boolean(expectMsg('true or false')).default(true),
      migration: z
        .strictObject(
          { requireBackend: z.boolean(expectMsg('true or false')).default(false) },
          expectMsg('a mapping with requireBackend'),
        )
        .default({ requireBackend: false }),
    },
    expectMsg('a mapping with hostId, backend and networks'),
  )
  .superRefine((config, ctx) => {
    const seen = new Map<string, string>();
    config.networks.forEach((network, index) => {
      for (const [kind, key] of [
        ['name', network.name],
        ['bridge', network.bridge],
      ] as const) {
        if (key === undefined) continue;
        const other = seen.get(`${kind}:${key}`);
        if (other !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['networks', index, kind],
            message: `expected a ${kind} no other network has, found ${JSON.stringify(key)} again (also ${other})`,
          });
        }
        seen.set(`${kind}:${key}`, `networks[${index}]`);
      }
    });
    if (config.backend.url.startsWith('http:') && !config.backend.insecure) {
      ctx.addIssue({
        code: 'custom',
        path: ['backend', 'url'],
        message: `expected an https URL (plain http only with backend.insecure: true), found ${JSON.stringify(config.backend.url)}`,
      });
    }
    if (config.timeouts.requestMs >= config.timeouts.hookMs) {
      ctx.addIssue({
        code: 'custom',
        path: ['timeouts', 'requestMs'],
        message: `expected less than timeouts.hookMs (${config.timeouts.hookMs}), found ${config.timeouts.requestMs}`,
      });
    }
  });

/** What a config file may contain, before defaults (for the template and tests). */
export type HookConfigInput = z.input<typeof HookConfigSchema>;

/**
 * Validate a hook configuration given as YAML text.
 *
 * @throws {HookConfigError} `E_HOOK_CONFIG` naming every bad field.
 * @example parseHookConfigText('hostId: kvm-07\nbackend: ...', '/etc/ticrypt-net/hook.yaml');
 */
export function parseHookConfigText(text: string, file: string): HookConfig {
  const read = readYaml(text);
  if (!read.ok) throw new HookConfigError(file, [read.issue]);
  const data = read.data;
  const result = HookConfigSchema.safeParse(data ?? {}, { reportInput: true });
  if (!result.success) throw new HookConfigError(file, fromZodIssues(result.error.issues));
  const { networks, backend, ...rest } = result.data;
  return {
    ...rest,
    backend: {
      url: backend.url,
      tokenFile: backend.tokenFile,
      ...(backend.caFile === undefined ? {} : { caFile: backend.caFile }),
      ...(backend.insecure ? { insecure: true } : {}),
    },
    networks: networks.map((n): HookNetwork => ({
      name: n.name,
      requireRegistration: n.requireRegistration,
      ...(n.bridge === undefined ? {} : { bridge: n.bridge }),
    })),
  };
}

/**
 * Read and validate the hook configuration file.
 *
 * @throws {HookConfigError} `E_HOOK_CONFIG` when it is unreadable or invalid.
 */
export async function loadHookConfig(file: string): Promise<HookConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new HookConfigError(file, [{ path: '(file)', message: `expected a readable file, found ${reason}` }]);
  }
  return parseHookConfigText(text, file);
}

/** A commented `hook.yaml` to start from (written by `ticrypt-net hook install`). */
export function hookConfigTemplate(hostId = 'kvm-01'): string {
  return `# ticrypt-net hook configuration: read by /etc/libvirt/hooks/qemu and network at every
# VM start and stop, and by \`ticrypt-net host flush|reconcile\`. Check it with
# \`ticrypt-net hook check\`. Changes apply at the next hook run (no restart).

# This host's id: the part of its token before the dot (\`ticrypt-net backend token add ${hostId}\`).
hostId: ${hostId}

backend:
  # The backend API, on the management network (never a VM network).
  url: ${DEFAULT_BACKEND_URL}
  # CA certificate that signed the backend's TLS certificate (omit for the system's CAs).
  caFile: /etc/ticrypt-net/backend-ca.pem
  # This host's token, readable by root only (chmod 600): the hook refuses a file group or others can read.
  tokenFile: /etc/ticrypt-net/host.token
  # Plain http:// is refused unless this is true (a protected management network, or tests).
  # insecure: true

# The libvirt networks whose NICs are registered; NICs on any other network are ignored.
# requireRegistration: true refuses to start a VM whose registration fails (default:
# the VM starts with no access, and the registration is spooled and retried).
networks:
  - name: secure
    bridge: br-secure
    requireRegistration: false
  - name: service
    bridge: br-service
  - name: datain
    bridge: br-datain

timeouts:
  requestMs: ${DEFAULT_REQUEST_MS} # one backend call
  hookMs: ${DEFAULT_HOOK_MS} # a whole hook run, Node start included

# Undelivered events (fsynced), the generation counter and locks.
spoolDir: ${DEFAULT_SPOOL_DIR}

# Also log to syslog/journald (via /usr/bin/logger); stderr is always used.
syslog: true

# Live migration to this host: requireBackend: true refuses an incoming migration (at libvirt's
# \`migrate begin\`) unless the backend confirmed the VM's NICs; false (default) lets it go on with
# the registration spooled (the VM may have no access on this host until it is delivered).
migration:
  requireBackend: false
`;
}
