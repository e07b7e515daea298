import { TollBlockKeeper, HANGUP_REASON } from '../../../src/monitor/toll-blocks';
import { OutboxSender } from '../../../src/monitor/outbox-sender';
import type { GuardCore } from '../../../src/core/guard-core';
import type { CallControl, HangUpFilter } from '../../../src/sip/call-events';
import { MemoryMonitorStore } from '../../../src/store/memory-monitor-store';
import { silentLogger } from '../../../src/log';
import type { Finding } from '../../../src/monitor/types';

const T = Date.UTC(2026, 10, 25, 3, 0);

function fakes() {
  let set: ReadonlySet<string> = new Set();
  const core = { setTollBlocked: (s: ReadonlySet<string>) => (set = s), isTollBlocked: (id: string) => set.has(id) } as unknown as GuardCore;
  const hangUps: Array<[string, HangUpFilter | undefined, string | undefined]> = [];
  const calls: CallControl = {
    liveCalls: () => [],
    hangUpCalls: (account, filter, reason) => {
      hangUps.push([account, filter, reason]);
      return Promise.resolve(1);
    },
  };
  return { core, calls, hangUps, blockedSet: () => set };
}

const finding: Finding = { account: 'victim', rule: 'high_risk_attempts', level: 'critical', value: 3, threshold: 3, detail: '3 attempts', at: T, callId: 'c5', destinations: ['+252'] };
const tick = () => new Promise((r) => setImmediate(r));

describe('TollBlockKeeper', () => {
  it('loads the stored blocks into the core at start', () => {
    const store = new MemoryMonitorStore();
    store.block({ account: 'victim', reason: 'x', rule: null, by: 'ops', at: T });
    const f = fakes();
    new TollBlockKeeper(store, f.core, f.calls, silentLogger()).load();
    expect([...f.blockedSet()]).toEqual(['victim']);
  });

  it('applies a finding: store, core set, notifications, and ends the live international calls', async () => {
    const store = new MemoryMonitorStore();
    const f = fakes();
    const k = new TollBlockKeeper(store, f.core, f.calls, silentLogger());
    k.load();
    const created = k.applyFinding(finding, () => [{ kind: 'webhook', account: 'victim', payload: { url: 'http://h', body: {} } }]);
    expect(created).toBe(true);
    expect(f.core.isTollBlocked('victim')).toBe(true);
    expect(store.activeBlock('victim')).toMatchObject({ rule: 'high_risk_attempts', by: 'monitor', details: { callId: 'c5', value: 3 } });
    expect(store.outbox()).toHaveLength(1);
    await tick();
    expect(f.hangUps).toEqual([['victim', { international: true }, HANGUP_REASON]]);
    expect(k.applyFinding({ ...finding, at: T + 1 }, () => [])).toBe(false);
  });

  it('follows blocks and unblocks made by another process', async () => {
    const store = new MemoryMonitorStore();
    const f = fakes();
    const lifted: string[] = [];
    const k = new TollBlockKeeper(store, f.core, f.calls, silentLogger(), (a) => lifted.push(a));
    k.load();
    store.block({ account: 'bob', reason: 'by hand', rule: null, by: 'ops', at: T });
    k.poll();
    expect(f.core.isTollBlocked('bob')).toBe(true);
    await tick();
    expect(f.hangUps.map((h) => h[0])).toEqual(['bob']);
    store.unblock('bob', 'ops', 'reset', false, T + 1, 'cli:ops');
    k.poll();
    expect(f.core.isTollBlocked('bob')).toBe(false);
    expect(lifted).toEqual(['bob']);
  });
});

describe('OutboxSender', () => {
  it('sends, and on failure retries with backoff until max_attempts, then gives up without losing the message', async () => {
    const store = new MemoryMonitorStore();
    store.enqueue([{ kind: 'email', account: 'victim', payload: { to: ['a@x.example'], cc: [], subject: 's', text: 't' } }], T);
    let now = T;
    let fail = true;
    const sent: string[] = [];
    const sender = new OutboxSender(
      store,
      () => ({ max_attempts: 3 }),
      silentLogger(),
      async (m) => {
        if (fail) throw new Error('connect ECONNREFUSED 127.0.0.1:25');
        sent.push(m.subject);
      },
      async () => undefined,
      () => now,
    );
    await sender.flush();
    expect(store.outbox()[0]).toMatchObject({ attempts: 1, lastError: 'connect ECONNREFUSED 127.0.0.1:25', nextAttemptAt: T + 5000, gaveUp: false });
    await sender.flush(); // not due yet
    expect(store.outbox()[0].attempts).toBe(1);
    now = T + 5000;
    fail = false;
    await sender.flush();
    expect(sent).toEqual(['s']);
    expect(store.outbox()[0]).toMatchObject({ sentAt: T + 5000, attempts: 2 });

    store.enqueue([{ kind: 'webhook', account: 'victim', payload: { url: 'http://h', body: {} } }], now);
    const failing = new OutboxSender(store, () => ({ max_attempts: 2 }), silentLogger(), async () => undefined, async () => {
      throw new Error('webhook answered HTTP 500');
    }, () => now);
    await failing.flush();
    now += 5000;
    await failing.flush();
    expect(store.unsentOutbox()).toEqual([expect.objectContaining({ kind: 'webhook', attempts: 2, gaveUp: true, lastError: 'webhook answered HTTP 500' })]);
  });
});
