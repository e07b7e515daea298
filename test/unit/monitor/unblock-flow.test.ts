import { blockAccount, recordPasswordReset, statusReport, unblockAccount } from '../../../src/admin/toll-block-admin';
import { MemoryMonitorStore } from '../../../src/store/memory-monitor-store';

const T = Date.UTC(2026, 10, 25, 3, 0);

function blocked(): MemoryMonitorStore {
  const s = new MemoryMonitorStore();
  s.block({ account: 'victim', reason: '3 attempts to high-risk destinations', rule: 'high_risk_attempts', by: 'monitor', at: T });
  return s;
}

describe('unblock', () => {
  it('is refused without a password reset, and says why and what to do', () => {
    const s = blocked();
    const r = unblockAccount(s, { account: 'victim', by: 'alice', actor: 'cli:alice', now: T + 1000 });
    expect(r.ok).toBe(false);
    expect(r.message).toMatch(/^Refused: account victim was blocked at 2026-11-25T03:00:00.000Z \(3 attempts to high-risk destinations\)/);
    expect(r.message).toContain('tollguard password-reset victim');
    expect(r.message).toContain('--force --reason');
    expect(s.activeBlock('victim')).toBeDefined();
  });

  it('is refused when the only password reset is older than the block', () => {
    const s = new MemoryMonitorStore();
    s.recordPasswordReset('victim', 'helpdesk', T - 1000, 'cli:helpdesk');
    s.block({ account: 'victim', reason: 'x', rule: null, by: 'ops', at: T });
    const r = unblockAccount(s, { account: 'victim', by: 'alice', actor: 'cli:alice', now: T + 1000 });
    expect(r.ok).toBe(false);
    expect(r.message).toContain('older than the block');
  });

  it('lifts the block after a password reset recorded after it', () => {
    const s = blocked();
    recordPasswordReset(s, 'victim', 'helpdesk', 'cli:helpdesk', T + 500);
    const r = unblockAccount(s, { account: 'victim', by: 'alice', actor: 'cli:alice', now: T + 1000 });
    expect(r).toMatchObject({ ok: true });
    expect(s.activeBlock('victim')).toBeUndefined();
    expect(s.history('victim').at(-1)).toMatchObject({ action: 'unblock', by: 'alice', forced: false });
  });

  it('--force needs a reason, and is recorded as forced', () => {
    const s = blocked();
    expect(unblockAccount(s, { account: 'victim', by: 'bob', actor: 'cli:bob', force: true, now: T + 1 }).ok).toBe(false);
    const r = unblockAccount(s, { account: 'victim', by: 'bob', actor: 'cli:bob', force: true, reason: 'misdial confirmed with the customer', now: T + 2 });
    expect(r.ok).toBe(true);
    expect(s.auditTrail('victim')[0]).toMatchObject({ action: 'unblock_forced', actor: 'cli:bob', reason: 'misdial confirmed with the customer' });
  });

  it('says so when there is no block', () => {
    const r = unblockAccount(new MemoryMonitorStore(), { account: 'victim', by: 'a', actor: 'cli:a', now: T });
    expect(r).toEqual({ ok: false, message: 'Account victim has no toll block in force; nothing to lift.' });
  });
});

describe('block by hand and status', () => {
  it('applies a block with its notifications, once', () => {
    const s = new MemoryMonitorStore();
    const notes = jest.fn(() => [{ kind: 'webhook' as const, account: 'victim', payload: { url: 'http://h', body: {} } }]);
    expect(blockAccount(s, { account: 'victim', reason: 'customer reported theft', by: 'ops', actor: 'cli:ops', now: T }, notes).ok).toBe(true);
    expect(blockAccount(s, { account: 'victim', reason: 'again', by: 'ops', actor: 'cli:ops', now: T + 1 }, notes).ok).toBe(false);
    expect(s.outbox()).toHaveLength(1);
    expect(s.activeBlock('victim')).toMatchObject({ by: 'ops', rule: null, reason: 'customer reported theft' });
  });

  it('status shows the block, resets, history, audit and undelivered notifications', () => {
    const s = blocked();
    s.enqueue([{ kind: 'email', account: 'victim', payload: { to: ['x@y.example'], cc: [], subject: 's', text: 't' } }], T);
    s.markFailed(1, 'connect ECONNREFUSED', T + 5000, true);
    recordPasswordReset(s, 'victim', 'helpdesk', 'cli:helpdesk', T + 10);
    const text = statusReport(s, 'victim');
    expect(text).toMatch(/^victim: BLOCKED \(international\) since 2026-11-25T03:00:00.000Z by monitor, rule high_risk_attempts/);
    expect(text).toContain('password resets: 2026-11-25T03:00:00.010Z by helpdesk');
    expect(text).toContain('block by monitor: 3 attempts to high-risk destinations');
    expect(text).toContain('password_reset by cli:helpdesk');
    expect(text).toContain('#1 email for victim: 1 attempt(s), GIVEN UP, last error: connect ECONNREFUSED');
    expect(statusReport(s)).toMatch(/^1 toll block in force:\n  victim/);
  });
});
