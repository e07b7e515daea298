import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MemoryMonitorStore } from '../../../src/store/memory-monitor-store';
import type { MonitorStore, OutboxItem } from '../../../src/store/monitor-store';
import { SqliteMonitorStore } from '../../../src/store/sqlite-monitor-store';
import { openDatabase } from '../../../src/store/sqlite';

const T = Date.UTC(2026, 10, 25, 3, 0);
const email: OutboxItem = { kind: 'email', account: 'victim', payload: { to: ['a@x.example'], cc: ['noc@x.example'], subject: 's', text: 't' } };
const hook: OutboxItem = { kind: 'webhook', account: 'victim', payload: { url: 'http://127.0.0.1:1/h', body: { event: 'toll_block' } } };
const req = (at = T) => ({ account: 'victim', reason: '3 high-risk attempts', rule: 'high_risk_attempts', by: 'monitor', at, details: { destinations: ['+252'] } });

let dir: string;
beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollguard-store-'))));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

let fileNo = 0;
const implementations: Array<[string, () => MonitorStore]> = [
  ['memory', () => new MemoryMonitorStore()],
  ['sqlite', () => new SqliteMonitorStore(openDatabase(path.join(dir, `s${++fileNo}.db`)))],
];

describe.each(implementations)('%s MonitorStore', (_name, make) => {
  let store: MonitorStore;
  beforeEach(() => (store = make()));
  afterEach(() => store.close());

  it('applies a block once: a second block of the same account keeps the first and queues nothing', () => {
    const first = store.block(req(), [email, hook]);
    expect(first.created).toBe(true);
    expect(first.block).toMatchObject({ account: 'victim', rule: 'high_risk_attempts', by: 'monitor', appliedAt: T, details: { destinations: ['+252'] } });
    const again = store.block({ ...req(T + 1000), reason: 'other' }, [email]);
    expect(again.created).toBe(false);
    expect(again.block.appliedAt).toBe(T);
    expect(store.activeBlocks().map((b) => b.account)).toEqual(['victim']);
    expect(store.outbox()).toHaveLength(2);
    expect(store.history('victim')).toEqual([{ account: 'victim', action: 'block', at: T, by: 'monitor', reason: '3 high-risk attempts', forced: false }]);
  });

  it('unblocks with history and audit, and says when there was nothing to lift', () => {
    store.block(req());
    const lifted = store.unblock('victim', 'alice', 'password reset', false, T + 5000, 'cli:alice');
    expect(lifted?.appliedAt).toBe(T);
    expect(store.activeBlock('victim')).toBeUndefined();
    expect(store.unblock('victim', 'alice', 'again', false, T + 6000, 'cli:alice')).toBeUndefined();
    expect(store.history('victim').map((h) => [h.action, h.by, h.forced])).toEqual([['block', 'monitor', false], ['unblock', 'alice', false]]);
    expect(store.auditTrail('victim').map((a) => [a.action, a.actor])).toEqual([['unblock', 'cli:alice'], ['block', 'monitor']]);
  });

  it('records a forced unblock as such', () => {
    store.block(req());
    store.unblock('victim', 'bob', 'customer verified by phone', true, T + 1, 'cli:bob');
    expect(store.history('victim')[1]).toMatchObject({ action: 'unblock', forced: true, reason: 'customer verified by phone' });
    expect(store.auditTrail('victim')[0]).toMatchObject({ action: 'unblock_forced', actor: 'cli:bob' });
  });

  it('keeps password resets newest first, audited', () => {
    store.recordPasswordReset('victim', 'helpdesk', T + 10, 'cli:helpdesk');
    store.recordPasswordReset('victim', 'api', T + 20, 'api:ops');
    store.recordPasswordReset('other', 'x', T + 30, 'cli:x');
    expect(store.passwordResets('victim')).toEqual([{ account: 'victim', at: T + 20, by: 'api' }, { account: 'victim', at: T + 10, by: 'helpdesk' }]);
    expect(store.auditTrail('victim').map((a) => a.action)).toEqual(['password_reset', 'password_reset']);
  });

  it('delivers the outbox by due time; failures retry later and can be given up (but stay listed)', () => {
    store.block(req(), [email, hook]);
    const due = store.dueOutbox(T, 10);
    expect(due.map((m) => m.kind)).toEqual(['email', 'webhook']);
    expect(due[0].payload).toEqual(email.payload);
    store.markSent(due[0].id, T + 1);
    store.markFailed(due[1].id, 'connection refused', T + 5000, false);
    expect(store.dueOutbox(T + 4999, 10)).toEqual([]);
    const retry = store.dueOutbox(T + 5000, 10);
    expect(retry).toHaveLength(1);
    expect(retry[0]).toMatchObject({ kind: 'webhook', attempts: 1, lastError: 'connection refused' });
    store.markFailed(retry[0].id, 'still refused', T + 99_000, true);
    expect(store.dueOutbox(T + 100_000, 10)).toEqual([]);
    expect(store.unsentOutbox()).toEqual([expect.objectContaining({ kind: 'webhook', gaveUp: true, attempts: 2 })]);
    expect(store.outbox('victim').find((m) => m.kind === 'email')).toMatchObject({ sentAt: T + 1, attempts: 1 });
  });

  it('keeps the latest time each region was seen', () => {
    store.recordRegions([{ account: 'a', region: '+61', lastSeen: 100 }, { account: 'a', region: '+44', lastSeen: 50 }]);
    store.recordRegions([{ account: 'a', region: '+61', lastSeen: 80 }, { account: 'a', region: '+44', lastSeen: 70 }]);
    expect(store.seenRegions().sort((x, y) => x.region.localeCompare(y.region))).toEqual([
      { account: 'a', region: '+44', lastSeen: 70 },
      { account: 'a', region: '+61', lastSeen: 100 },
    ]);
  });

  it('keeps the first time a number range (marked #) was called', () => {
    store.recordRegions([{ account: 'a', region: '#+4470123456', lastSeen: 100 }]);
    store.recordRegions([{ account: 'a', region: '#+4470123456', lastSeen: 200 }]);
    expect(store.seenRegions()).toEqual([{ account: 'a', region: '#+4470123456', lastSeen: 100 }]);
  });

  it('changes its change token on every write', () => {
    const t0 = store.changeToken();
    store.block(req());
    const t1 = store.changeToken();
    expect(t1).not.toBe(t0);
    store.recordPasswordReset('victim', 'x', T, 'cli:x');
    expect(store.changeToken()).not.toBe(t1);
  });
});

describe('SqliteMonitorStore on one file shared by two processes (guard and CLI)', () => {
  it('sees the other connection commit through changeToken, and its data', () => {
    const file = path.join(dir, 'shared.db');
    const guard = new SqliteMonitorStore(openDatabase(file));
    const cli = new SqliteMonitorStore(openDatabase(file));
    try {
      const before = guard.changeToken();
      expect(guard.changeToken()).toBe(before); // reading does not move it
      cli.block({ ...req(), by: 'alice' });
      expect(guard.changeToken()).not.toBe(before);
      expect(guard.activeBlocks().map((b) => b.by)).toEqual(['alice']);
    } finally {
      guard.close();
      cli.close();
    }
  });

  it('keeps everything across a reopen (what a restart does)', () => {
    const file = path.join(dir, 'reopen.db');
    const a = new SqliteMonitorStore(openDatabase(file));
    a.block(req(), [email]);
    a.recordPasswordReset('victim', 'helpdesk', T + 1, 'cli:helpdesk');
    a.close();
    const b = new SqliteMonitorStore(openDatabase(file));
    try {
      expect(b.activeBlock('victim')?.reason).toBe('3 high-risk attempts');
      expect(b.passwordResets('victim')).toHaveLength(1);
      expect(b.unsentOutbox()).toHaveLength(1);
      expect(b.auditTrail().map((x) => x.action)).toEqual(['password_reset', 'block']);
    } finally {
      b.close();
    }
  });

  it('keeps its tables apart from other features in the same file', () => {
    const file = path.join(dir, 'tables.db');
    const db = openDatabase(file);
    new SqliteMonitorStore(db);
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as Array<{ name: string }>).map((t) => t.name);
    expect(tables).toEqual(['account_block_history', 'account_blocks', 'audit_log', 'monitor_regions_seen', 'notify_outbox', 'password_resets']);
    db.close();
  });
});
