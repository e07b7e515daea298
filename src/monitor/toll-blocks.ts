/**
 * Keeps the core's set of toll-blocked accounts equal to the store's, and acts on a new block.
 *
 * The store is the truth: blocks applied by the monitor (here), by `tollguard block` or lifted by
 * `tollguard unblock` (other processes, same SQLite file) all land there. poll() notices another
 * process's commit through MonitorStore.changeToken() (PRAGMA data_version: one cheap read), so
 * the running guard follows a CLI change within one poll interval. Each change replaces the core's
 * set whole (GuardCore.setTollBlocked), and a newly blocked account's live international calls
 * are torn down through CallControl, whichever front end runs.
 */
import type { Logger } from 'winston';
import type { GuardCore } from '../core/guard-core';
import type { CallControl } from '../sip/call-events';
import type { MonitorStore, OutboxItem, TollBlock } from '../store/monitor-store';
import type { Finding } from './types';

export const HANGUP_REASON = 'SIP;cause=403;text="international toll block"';

export class TollBlockKeeper {
  private blocked = new Map<string, TollBlock>();
  private token = -1;

  constructor(
    private readonly store: MonitorStore,
    private readonly core: GuardCore,
    private readonly calls: CallControl,
    private readonly log: Logger,
    /** Told when a block is lifted, so the detector starts that account afresh. */
    private readonly onLifted: (account: string) => void = () => undefined,
  ) {}

  /** Loads the blocks in force (at start: before the first call is admitted). */
  load(): void {
    this.token = this.store.changeToken();
    const blocks = this.store.activeBlocks();
    this.blocked = new Map(blocks.map((b) => [b.account, b]));
    this.core.setTollBlocked(new Set(this.blocked.keys()));
    this.log.info({ message: 'toll blocks loaded', count: blocks.length, accounts: [...this.blocked.keys()] });
  }

  isBlocked(account: string): boolean {
    return this.blocked.has(account);
  }

  /** Applies the monitor's block for a critical finding; false when the account was already blocked. */
  applyFinding(f: Finding, notifications: (b: TollBlock) => OutboxItem[]): boolean {
    if (this.blocked.has(f.account)) return false;
    const req = {
      account: f.account,
      reason: f.detail,
      rule: f.rule,
      by: 'monitor',
      at: f.at,
      details: { value: f.value, threshold: f.threshold, destinations: f.destinations, callId: f.callId ?? null },
    };
    const probe: TollBlock = { account: req.account, reason: req.reason, rule: req.rule, by: req.by, appliedAt: req.at, details: req.details };
    const { created, block } = this.store.block(req, notifications(probe));
    this.blocked.set(block.account, block);
    this.core.setTollBlocked(new Set(this.blocked.keys()));
    this.token = this.store.changeToken();
    if (created) {
      this.log.warn({ message: 'toll block applied', account: f.account, by: 'monitor', rule: f.rule, value: f.value, threshold: f.threshold, detail: f.detail, callId: f.callId ?? null, destinations: f.destinations });
    }
    this.hangUp(block.account);
    return created;
  }

  /** Follows changes other processes made to the store (CLI block/unblock); true when the store changed at all. */
  poll(): boolean {
    const token = this.store.changeToken();
    if (token === this.token) return false;
    this.token = token;
    const next = new Map(this.store.activeBlocks().map((b) => [b.account, b]));
    const added = [...next.keys()].filter((a) => !this.blocked.has(a));
    const lifted = [...this.blocked.keys()].filter((a) => !next.has(a));
    if (added.length === 0 && lifted.length === 0) return true;
    this.blocked = next;
    this.core.setTollBlocked(new Set(next.keys()));
    for (const a of added) {
      const b = next.get(a)!;
      this.log.warn({ message: 'toll block applied', account: a, by: b.by, rule: b.rule, detail: b.reason, source: 'store' });
      this.hangUp(a);
    }
    for (const a of lifted) {
      this.log.info({ message: 'toll block lifted', account: a, source: 'store' });
      this.onLifted(a);
    }
    return true;
  }

  /** After the current call's processing, so an INVITE being admitted right now is torn down too. */
  private hangUp(account: string): void {
    setImmediate(() => {
      this.calls.hangUpCalls(account, { international: true }, HANGUP_REASON).then(
        (n) => {
          if (n > 0) this.log.warn({ message: 'live international calls ended', account, calls: n, reason: 'toll block' });
        },
        (err: unknown) => this.log.error({ message: 'could not end live international calls', account, error: err instanceof Error ? err.message : String(err) }),
      );
    });
  }
}
