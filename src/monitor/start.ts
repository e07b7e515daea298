/**
 * Wires the fraud monitor into a running guard, through the front-end-neutral seams only:
 * CallObserver events in (decided / answered / ended), GuardCore.setTollBlocked and CallControl
 * out, the MonitorStore for everything that must survive a restart.
 *
 *   decided (international) -> FraudDetector -> findings
 *     info     -> log line (possible misdial)
 *     warning  -> log line + NOC email / webhook (outbox)
 *     critical -> toll block: store (with its email + webhook, one transaction), core set, live
 *                 international calls torn down
 */
import type { Logger } from 'winston';
import type { GuardCore } from '../core/guard-core';
import { UNKNOWN_ACCOUNT_ID, type CompiledRules } from '../rules/compile';
import type { RuleStore } from '../rules/rule-store';
import type { CallControl, CallObserver, DecisionEvent } from '../sip/call-events';
import type { MonitorStore } from '../store/monitor-store';
import { startAdminApi } from '../admin/http-api';
import { SqliteMonitorStore } from '../store/sqlite-monitor-store';
import { openDatabase, storePath } from '../store/sqlite';
import { FraudDetector } from './fraud-detector';
import { MONITOR_OFF, type CompiledMonitor } from './thresholds';
import { blockNotifications, warningNotifications } from './messages';
import { OutboxSender, type PostJson, type SendMail } from './outbox-sender';
import { TollBlockKeeper } from './toll-blocks';
import type { AttemptEvent, Finding } from './types';

/** Rules whose refusals say nothing about the account's own calling (or come after a block). */
const NOT_MONITORED = new Set(['toll_block', 'international', 'source', 'account_source', 'unknown_caller', 'invalid_destination']);

export interface MonitorOptions {
  rules: RuleStore;
  core: GuardCore;
  /** The front end's event source: GuardPolicy (embedded proxy) or DrachtioFrontEnd. */
  policy: { addObserver(o: CallObserver): unknown };
  calls: CallControl;
  logger: Logger;
  /** Default: SQLite at guard.yaml store.path (or stateFile). */
  store?: MonitorStore;
  /** Overrides guard.yaml store.path (--state, tests). */
  stateFile?: string;
  pollMs?: number;
  tickMs?: number;
  sendMail?: SendMail;
  post?: PostJson;
}

export interface RunningMonitor {
  detector: FraudDetector;
  blocks: TollBlockKeeper;
  store: MonitorStore;
  outbox: OutboxSender;
  /** A finding from outside the detector (the defense's compromised accounts) acted on like its own. */
  report(f: Finding): void;
  stop(): Promise<void>;
}

export function startMonitor(o: MonitorOptions): RunningMonitor {
  const log = o.logger;
  let rules: CompiledRules = o.rules.current;
  const monitorOf = (r: CompiledRules): CompiledMonitor => r.monitor ?? MONITOR_OFF;
  const store = o.store ?? new SqliteMonitorStore(openDatabase(storePath(rules.guard.store?.path, o.stateFile)));
  const detector = new FraudDetector({
    thresholds: (id) => monitorOf(rules).forAccount(id),
    maxCallMs: (rules.guard.sip.max_call_seconds ?? 14_400) * 1000,
  });
  for (const r of store.seenRegions()) detector.seedRegion(r.account, r.region, r.lastSeen);
  const blocks = new TollBlockKeeper(store, o.core, o.calls, log, (account) => detector.forgetIncident(account));
  blocks.load();
  const outbox = new OutboxSender(store, () => rules.guard.notify, log, o.sendMail, o.post);
  const flush = (): void => {
    outbox.flush().catch((err: unknown) => log.error({ message: 'notification outbox failed', error: err instanceof Error ? err.stack : String(err) }));
  };

  const onSwap = (next: CompiledRules): void => {
    rules = next;
    detector.setThresholds((id) => monitorOf(next).forAccount(id));
  };
  o.rules.on('swapped', onSwap);

  const act = (findings: Finding[]): void => {
    for (const f of findings) {
      if (f.level === 'critical') {
        if (blocks.isBlocked(f.account)) continue;
        log.warn({ message: 'fraud finding', ...f });
        const email = rules.account(f.account)?.email;
        blocks.applyFinding(f, (block) => blockNotifications({ block, accountEmail: email, finding: f }, rules.guard.notify));
        flush();
      } else if (f.level === 'warning') {
        log.warn({ message: 'fraud finding', ...f });
        const items = warningNotifications(f, rules.guard.notify);
        if (items.length > 0) {
          store.enqueue(items, f.at);
          flush();
        }
      } else {
        log.info({ message: 'fraud finding', ...f });
      }
    }
  };

  const observer: CallObserver = {
    decided(e: DecisionEvent) {
      const v = e.verdict;
      if (!monitorOf(rules).enabled || v.international !== true || v.account === undefined || v.normalised === undefined) return;
      if (v.account === UNKNOWN_ACCOUNT_ID || NOT_MONITORED.has(v.rule)) return;
      const ev: AttemptEvent = {
        callId: e.callId,
        account: v.account,
        at: e.at,
        e164: v.normalised,
        admitted: v.allow,
        rule: v.rule,
        highRisk: v.rule === 'high_risk' || (v.allow && rules.highRisk.lookup(v.normalised) !== undefined),
        misdial: v.misdial,
      };
      act(detector.attempt(ev));
    },
    answered(callId, at) {
      detector.answered(callId, at);
    },
    ended(callId) {
      detector.ended(callId);
    },
  };
  o.policy.addObserver(observer);

  const guarded = (what: string, fn: () => void) => () => {
    try {
      fn();
    } catch (err) {
      log.error({ message: `fraud monitor: ${what} failed`, error: err instanceof Error ? err.stack : String(err) });
    }
  };
  const guardedReport = (f: Finding): void => guarded('report', () => act([f]))();
  // A change from the CLI may have queued notifications (a block by hand): deliver them now.
  const pollTimer = setInterval(guarded('store poll', () => blocks.poll() && flush()), o.pollMs ?? 250);
  const tickTimer = setInterval(
    guarded('tick', () => {
      const findings = detector.tick(Date.now());
      if (monitorOf(rules).enabled) act(findings);
      store.recordRegions(detector.drainLearned());
      flush();
    }),
    o.tickMs ?? 5000,
  );
  pollTimer.unref();
  tickTimer.unref();
  flush(); // anything left unsent by a previous run

  // Read at start, like the SIP sockets: a reload that changes admin_api takes effect on restart.
  const api = rules.guard.admin_api
    ? startAdminApi({ config: rules.guard.admin_api, store, rules: () => rules, log, changed: () => blocks.poll() && flush() })
    : undefined;

  log.info({ message: 'fraud monitor started', detection: monitorOf(rules).enabled ? 'on' : 'off (no monitor.yaml)', blocks: store.activeBlocks().length, pendingNotifications: store.unsentOutbox().length });

  return {
    detector,
    blocks,
    store,
    outbox,
    report: guardedReport,
    async stop() {
      clearInterval(pollTimer);
      clearInterval(tickTimer);
      await api?.close();
      o.rules.off('swapped', onSwap);
      store.recordRegions(detector.drainLearned());
      await outbox.idle().catch((err: unknown) => log.error({ message: 'notification outbox failed', error: String(err) }));
      store.close();
    },
  };
}
