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
    expect(status(results)[1]?.[2]).toContain('dropped 3 batches of refusals');
  });
});

describe('the audit doctor checks on the loss ledger', () => {
  it('passes an empty ledger and fails one that counted a logger outage, with its length', async () => {
    const { emptyLedger } = await import('../../../src/backend/audit/loss-ledger.js');
    const fact = { pidFile: '/run/u.pid', pid: 42, netlinkDrops: 0, overruns: 0 };
    const clean = checkAudit({ ...fact, ledger: emptyLedger() });
    expect(clean.map((r) => [r.id, r.status])).toContainEqual(['audit.losses', 'ok']);
    const ledger = emptyLedger();
    ledger.lost['logger-down'] = 2;
    ledger.loggerDownSeconds = 3.25;
    const losses = checkAudit({ ...fact, ledger }).find((r) => r.id === 'audit.losses');
    expect(losses?.status).toBe('fail');
    expect(losses?.message).toContain('2 logger outage(s), 3.3 s in all');
    // Without a ledger (the service never ran with --audit here) there is no such check.
    expect(checkAudit(fact).map((r) => r.id)).not.toContain('audit.losses');
  });
});
