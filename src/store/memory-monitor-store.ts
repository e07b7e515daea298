/** MonitorStore in memory: for unit tests and for running without a database file. */
import type {
  AuditRecord,
  BlockHistoryEntry,
  BlockRequest,
  MonitorStore,
  NewAudit,
  OutboxItem,
  OutboxMessage,
  PasswordReset,
  RegionSeen,
  TollBlock,
} from './monitor-store';

const clone = <T>(v: T): T => structuredClone(v);

export class MemoryMonitorStore implements MonitorStore {
  private readonly blocks = new Map<string, TollBlock>();
  private readonly hist: BlockHistoryEntry[] = [];
  private readonly resets: PasswordReset[] = [];
  private readonly auditLog: AuditRecord[] = [];
  private readonly box: OutboxMessage[] = [];
  private readonly regions = new Map<string, RegionSeen>();
  private changes = 0;

  activeBlocks(): TollBlock[] {
    return [...this.blocks.values()].sort((a, b) => a.appliedAt - b.appliedAt).map(clone);
  }

  activeBlock(account: string): TollBlock | undefined {
    const b = this.blocks.get(account);
    return b && clone(b);
  }

  block(req: BlockRequest, notifications: OutboxItem[] = []): { created: boolean; block: TollBlock } {
    const existing = this.blocks.get(req.account);
    if (existing) return { created: false, block: clone(existing) };
    const b: TollBlock = { account: req.account, reason: req.reason, rule: req.rule, by: req.by, appliedAt: req.at, details: req.details ?? null };
    this.blocks.set(req.account, b);
    this.hist.push({ account: req.account, action: 'block', at: req.at, by: req.by, reason: req.reason, forced: false });
    this.audit({ at: req.at, actor: req.actor ?? req.by, action: 'block', account: req.account, reason: req.reason, details: { rule: req.rule, ...(req.details ?? {}) } });
    this.enqueue(notifications, req.at);
    this.changes++;
    return { created: true, block: clone(b) };
  }

  unblock(account: string, by: string, reason: string, forced: boolean, at: number, actor: string): TollBlock | undefined {
    const existing = this.blocks.get(account);
    if (!existing) return undefined;
    this.blocks.delete(account);
    this.hist.push({ account, action: 'unblock', at, by, reason, forced });
    this.audit({ at, actor, action: forced ? 'unblock_forced' : 'unblock', account, reason, details: { blockedAt: existing.appliedAt, blockReason: existing.reason } });
    this.changes++;
    return existing;
  }

  recordPasswordReset(account: string, by: string, at: number, actor: string): void {
    this.resets.push({ account, at, by });
    this.audit({ at, actor, action: 'password_reset', account, reason: 'SIP password changed', details: { by } });
    this.changes++;
  }

  passwordResets(account: string): PasswordReset[] {
    return this.resets.filter((r) => r.account === account).reverse().sort((a, b) => b.at - a.at).map(clone);
  }

  history(account?: string): BlockHistoryEntry[] {
    return this.hist.filter((h) => account === undefined || h.account === account).map(clone);
  }

  audit(rec: NewAudit): void {
    this.auditLog.push({ ...clone(rec), id: this.auditLog.length + 1 });
    this.changes++;
  }

  auditTrail(account?: string, limit = 100): AuditRecord[] {
    return this.auditLog.filter((a) => account === undefined || a.account === account).reverse().slice(0, limit).map(clone);
  }

  enqueue(items: OutboxItem[], at: number): void {
    for (const i of items) {
      this.box.push({ ...clone(i), id: this.box.length + 1, createdAt: at, attempts: 0, nextAttemptAt: at, sentAt: null, lastError: null, gaveUp: false } as OutboxMessage);
    }
    if (items.length > 0) this.changes++;
  }

  dueOutbox(now: number, limit: number): OutboxMessage[] {
    return this.box.filter((m) => m.sentAt === null && !m.gaveUp && m.nextAttemptAt <= now).slice(0, limit).map(clone);
  }

  unsentOutbox(): OutboxMessage[] {
    return this.box.filter((m) => m.sentAt === null).map(clone);
  }

  outbox(account?: string): OutboxMessage[] {
    return this.box.filter((m) => account === undefined || m.account === account).map(clone);
  }

  markSent(id: number, at: number): void {
    const m = this.box[id - 1];
    if (!m) throw new Error(`outbox message ${id} does not exist`);
    m.sentAt = at;
    m.attempts++;
    m.lastError = null;
    this.changes++;
  }

  markFailed(id: number, error: string, nextAttemptAt: number, giveUp: boolean): void {
    const m = this.box[id - 1];
    if (!m) throw new Error(`outbox message ${id} does not exist`);
    m.attempts++;
    m.lastError = error;
    m.nextAttemptAt = nextAttemptAt;
    m.gaveUp = giveUp;
    this.changes++;
  }

  seenRegions(): RegionSeen[] {
    return [...this.regions.values()].map(clone);
  }

  recordRegions(seen: RegionSeen[]): void {
    for (const s of seen) {
      const key = `${s.account}\0${s.region}`;
      const old = this.regions.get(key);
      const keep = s.region.startsWith('#') ? !old || s.lastSeen < old.lastSeen : !old || old.lastSeen < s.lastSeen;
      if (keep) this.regions.set(key, { ...s });
    }
    if (seen.length > 0) this.changes++;
  }

  changeToken(): number {
    return this.changes;
  }

  close(): void {}
}
