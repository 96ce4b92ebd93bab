import type { EnforcedChange, EnforcedState, Enforcer } from '../../src/backend/service/enforcer.js';

/**
 * An Enforcer for unit tests of the registry and the API: records what it is
 * asked to do, and fails on demand. The lab tests use the real one (nft, dnsmasq).
 */
export class RecordingEnforcer implements Enforcer {
  readonly rebuilds: EnforcedState[] = [];
  readonly changes: EnforcedChange[] = [];
  failNext = false;

  async rebuild(state: EnforcedState): Promise<void> {
    this.rebuilds.push(state);
  }

  async change(change: EnforcedChange): Promise<void> {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('enforcement failed (test)');
    }
    this.changes.push(change);
  }
}
