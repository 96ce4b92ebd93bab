import { describe, expect, it } from 'vitest';
import { checkSite, defaultSite } from '../../src/site/parse.js';

describe('site: backend.auditStore', () => {
  it('defaults: /var/lib/ticrypt-net/audit, 256 MiB files, 400 days, 100 GiB, fsync per batch', () => {
    expect(defaultSite().backend.auditStore).toEqual({
      dir: '/var/lib/ticrypt-net/audit',
      rotateBytes: 256 * 2 ** 20,
      retainDays: 400,
      maxTotalBytes: 100 * 2 ** 30,
      fsyncIntervalMs: 0,
    });
  });

  it('takes a site value', () => {
    const check = checkSite({ backend: { auditStore: { dir: '/srv/audit', retainDays: 730 } } });
    expect(check.ok && check.site.backend.auditStore).toMatchObject({ dir: '/srv/audit', retainDays: 730 });
  });

  it.each([
    [{ dir: 'relative/audit' }, 'backend.auditStore.dir', /expected an absolute path/],
    [{ rotateBytes: 10 }, 'backend.auditStore.rotateBytes', /expected an integer 4096-/],
    [{ retainDays: 0 }, 'backend.auditStore.retainDays', /expected an integer 1-36500/],
    [{ fsyncIntervalMs: 1.5 }, 'backend.auditStore.fsyncIntervalMs', /expected an integer 0-10000/],
    [{ rotate: 1 }, 'backend.auditStore.rotate', /./],
  ])('refuses %j at its path', (auditStore, path, message) => {
    const check = checkSite({ backend: { auditStore } });
    expect(check.ok).toBe(false);
    const issue = check.ok ? undefined : check.issues[0];
    expect(issue?.path).toBe(path);
    expect(issue?.message).toMatch(message);
  });
});
