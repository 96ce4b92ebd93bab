import { describe, expect, it } from 'vitest';
import { checkAudit } from '../../../src/backend/audit/doctor-fact.js';

const status = (results: ReturnType<typeof checkAudit>) => results.map((r) => [r.id, r.status, r.message]);

describe('the audit doctor checks', () => {
  it('passes a running logger whose conntrack socket only overran (the kernel resends those events)', () => {
    const results = checkAudit({ pidFile: '/run/u.pid', pid: 42, netlinkDrops: 0, overruns: 1508 });
    expect(results.every((r) => r.status === 'ok')).toBe(true);
    expect(status(results)[1]?.[2]).toContain('1508 conntrack event overruns');
  });

  it('fails a logger that is not running, and refusals dropped on the NFLOG socket', () => {
    const results = checkAudit({ pidFile: '/run/u.pid', netlinkDrops: 3, overruns: 0 });
    expect(results.map((r) => r.status)).toEqual(['fail', 'fail']);
    expect(status(results)[1]?.[2]).toContain('dropped 3 refusals');
  });
});
