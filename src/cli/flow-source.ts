/**
 * Where the host commands get the backend's view for port security's flows:
 * hook.yaml's backend, with this host's token. For `host plan|apply|flows|reconcile`
 * and doctor. May not: print.
 */
import { access, readFile } from 'node:fs/promises';
import { BackendClient } from '../backend/api/client.js';
import { readToken } from '../hook/agent/environment.js';
import { loadHookConfig } from '../hook/setup/config.js';
import type { HookConfig } from '../hook/setup/config-types.js';
import { fetchNetworkViews } from '../host/flows/backend-view.js';
import type { FlowSource } from '../host/flows/observe.js';

/** The flows' backend source of a hook configuration (the token and CA are read when the backend is first asked). */
export function flowSourceOf(config: HookConfig, file?: string): FlowSource {
  return {
    networks: config.networks,
    async view(networks) {
      const client = new BackendClient({
        url: config.backend.url,
        token: readToken(config, file),
        ...(config.backend.caFile === undefined ? {} : { ca: await readFile(config.backend.caFile) }),
        timeoutMs: 5000,
      });
      return fetchNetworkViews(client, networks);
    },
  };
}

/**
 * The flows' source when the hook configuration exists (a host set up for
 * the hooks); `undefined` when it does not (flows are then not planned).
 *
 * @throws {HookConfigError} `E_HOOK_CONFIG` when it exists but is invalid.
 */
export async function optionalFlowSource(file: string): Promise<FlowSource | undefined> {
  const exists = await access(file).then(
    () => true,
    () => false,
  );
  return exists ? flowSourceOf(await loadHookConfig(file), file) : undefined;
}
