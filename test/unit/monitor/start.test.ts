/**
 * The monitor's wiring with real rules, a real core and the in-memory store; the front end is
 * replaced by the two seams it implements (CallObserver events in, CallControl out).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GuardCore } from '../../../src/core/guard-core';
import { silentLogger } from '../../../src/log';
import { startMonitor, type RunningMonitor } from '../../../src/monitor/start';
import { RuleStore } from '../../../src/rules/rule-store';
import type { CallControl, CallObserver, HangUpFilter } from '../../../src/sip/call-events';
import type { GuardPolicy } from '../../../src/sip/guard-policy';
import type { EmailPayload, WebhookPayload } from '../../../src/store/monitor-store';
import { MemoryMonitorStore } from '../../../src/store/memory-monitor-store';
import { makeRulesDir, removeDir } from '../rules/helpers';

const GUARD = `sip: { listen: [udp:127.0.0.1:18099], upstream: 127.0.0.1:18098 }
home_country: NZ
allowed_sources: [127.0.0.0/8]
notify:
  smtp: { host: 127.0.0.1, port: 18097 }
  from: tollguard@carrier.example
  noc: noc@carrier.example
  webhook_url: http://127.0.0.1:18096/hook
`;
const ACCOUNTS = `accounts:
  victim: { users: [victim], email: pbx@victim.example }
`;

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('startMonitor', () => {
  let dir: string;
  let monitor: RunningMonitor | undefined;
  let observer: CallObserver;
  let core: GuardCore;
  let mails: EmailPayload[];
  let hooks: WebhookPayload[];
  let hangUps: Array<[string, HangUpFilter | undefined]>;

  function start(monitorYaml?: string): void {
    dir = makeRulesDir({ guard: GUARD, accounts: ACCOUNTS });
    if (monitorYaml !== undefined) fs.writeFileSync(path.join(dir, 'monitor.yaml'), monitorYaml);
    const rules = RuleStore.open(dir);
    core = new GuardCore(rules.current);
    mails = [];
    hooks = [];
    hangUps = [];
    const policy = { addObserver: (o: CallObserver) => (observer = o) } as unknown as GuardPolicy;
    const calls: CallControl = { liveCalls: () => [], hangUpCalls: (a, f) => (hangUps.push([a, f]), Promise.resolve(1)) };
    monitor = startMonitor({
      rules, core, policy, calls, logger: silentLogger(), store: new MemoryMonitorStore(), pollMs: 20, tickMs: 20,
      sendMail: async (m) => void mails.push(m),
      post: async (h) => void hooks.push(h),
    });
  }

  afterEach(async () => {
    await monitor?.stop();
    monitor = undefined;
    removeDir(dir);
  });

  /** The core decides, and the observer hears of it, as the proxy's adapter does. */
  function invite(callId: string, dialled: string, user = 'victim'): void {
    const attempt = { source: '127.0.0.1', dialled, fromUser: user, callId, now: Date.now() };
    const verdict = core.decide(attempt);
    observer.decided!({ callId, attempt, verdict, peer: { address: '127.0.0.1', port: 5060, transport: 'udp' }, at: Date.now() });
  }

  it('blocks at the critical finding: core set, live international calls ended, one email and one webhook', async () => {
    start('defaults:\n  high_risk_attempts: { critical: 2 }\n');
    invite('c1', '0025261234567');
    expect(core.isTollBlocked('victim')).toBe(false);
    invite('c2', '0018765550123');
    expect(core.isTollBlocked('victim')).toBe(true); // before the next INVITE is decided
    expect(core.decide({ source: '127.0.0.1', dialled: '0061299990000', fromUser: 'victim', callId: 'c3', now: Date.now() })).toMatchObject({ rule: 'toll_block', status: 403 });
    expect(core.decide({ source: '127.0.0.1', dialled: '095550111', fromUser: 'victim', callId: 'c4', now: Date.now() })).toMatchObject({ allow: true });
    await wait(100);
    expect(hangUps).toEqual([['victim', { international: true }]]);
    expect(mails).toHaveLength(1);
    expect(mails[0]).toMatchObject({ to: ['pbx@victim.example'], cc: ['noc@carrier.example'], subject: 'International toll block applied to account victim' });
    expect(hooks).toHaveLength(1);
    expect(hooks[0].body).toMatchObject({ event: 'toll_block', account: 'victim', rule: 'high_risk_attempts' });
    expect(monitor!.store.activeBlock('victim')).toMatchObject({ by: 'monitor', rule: 'high_risk_attempts' });
  });

  it('blocks a call that stays up too long, found by the periodic check while it is up', async () => {
    start('defaults:\n  long_call: { international_minutes: { critical: 0.001 } }\n'); // 60 ms
    invite('long', '0061299990000');
    observer.answered!('long', Date.now());
    await wait(150);
    expect(core.isTollBlocked('victim')).toBe(true);
    expect(monitor!.store.activeBlock('victim')?.rule).toBe('long_call');
    expect(hangUps.map((h) => h[0])).toEqual(['victim']);
  });

  it('sends warnings to the NOC only, and does not block', async () => {
    start('defaults:\n  high_risk_attempts: { warning: 1, critical: 5 }\n');
    invite('w1', '0025261234567');
    await wait(80);
    expect(core.isTollBlocked('victim')).toBe(false);
    expect(mails).toEqual([expect.objectContaining({ to: ['noc@carrier.example'], cc: [], subject: 'Fraud warning: account victim, high_risk_attempts' })]);
  });

  it('without monitor.yaml detects nothing, but still enforces stored blocks', async () => {
    start();
    for (let i = 0; i < 10; i++) invite(`h${i}`, '00252612345' + i);
    expect(core.isTollBlocked('victim')).toBe(false);
    monitor!.store.block({ account: 'victim', reason: 'by hand', rule: null, by: 'ops', at: Date.now() });
    await wait(80);
    expect(core.isTollBlocked('victim')).toBe(true);
  });
});
