/**
 * MonitorStore on the guard's SQLite file (store/sqlite.ts). Table names carry their purpose
 * (account_blocks, ...) because the attack-source defense keeps its own tables in the same file.
 *
 * The guard and the CLI both open the file; WAL plus busy_timeout lets them write without
 * failing each other. changeToken() reads PRAGMA data_version, which SQLite bumps whenever
 * ANOTHER connection committed: that is how the running guard notices a CLI unblock cheaply.
 */
import type { Db } from './sqlite';
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

const SCHEMA = `
CREATE TABLE IF NOT EXISTS account_blocks (
  account    TEXT PRIMARY KEY,
  reason     TEXT NOT NULL,
  rule       TEXT,
  blocked_by TEXT NOT NULL,
  applied_at INTEGER NOT NULL,
  details    TEXT
);
CREATE TABLE IF NOT EXISTS account_block_history (
  id      INTEGER PRIMARY KEY AUTOINCREMENT,
  account TEXT NOT NULL,
  action  TEXT NOT NULL CHECK (action IN ('block', 'unblock')),
  at      INTEGER NOT NULL,
  by_whom TEXT NOT NULL,
  reason  TEXT NOT NULL,
  forced  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS account_block_history_account ON account_block_history (account, at);
CREATE TABLE IF NOT EXISTS password_resets (
  id      INTEGER PRIMARY KEY AUTOINCREMENT,
  account TEXT NOT NULL,
  at      INTEGER NOT NULL,
  by_whom TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS password_resets_account ON password_resets (account, at);
CREATE TABLE IF NOT EXISTS audit_log (
  id      INTEGER PRIMARY KEY AUTOINCREMENT,
  at      INTEGER NOT NULL,
  actor   TEXT NOT NULL,
  action  TEXT NOT NULL,
  account TEXT,
  reason  TEXT,
  details TEXT
);
CREATE INDEX IF NOT EXISTS audit_log_account ON audit_log (account, id);
CREATE TABLE IF NOT EXISTS notify_outbox (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  kind            TEXT NOT NULL CHECK (kind IN ('email', 'webhook')),
  account         TEXT,
  payload         TEXT NOT NULL,
  created_at      INTEGER NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  sent_at         INTEGER,
  last_error      TEXT,
  gave_up         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS notify_outbox_due ON notify_outbox (sent_at, gave_up, next_attempt_at);
CREATE TABLE IF NOT EXISTS monitor_regions_seen (
  account   TEXT NOT NULL,
  region    TEXT NOT NULL,
  last_seen INTEGER NOT NULL,
  PRIMARY KEY (account, region)
);
`;

interface BlockRow { account: string; reason: string; rule: string | null; blocked_by: string; applied_at: number; details: string | null }
interface OutboxRow {
  id: number; kind: 'email' | 'webhook'; account: string | null; payload: string; created_at: number; attempts: number;
  next_attempt_at: number; sent_at: number | null; last_error: string | null; gave_up: number;
}

const json = (v: unknown): string | null => (v === null || v === undefined ? null : JSON.stringify(v));
const parse = (s: string | null): Record<string, unknown> | null => (s === null ? null : (JSON.parse(s) as Record<string, unknown>));

function toBlock(r: BlockRow): TollBlock {
  return { account: r.account, reason: r.reason, rule: r.rule, by: r.blocked_by, appliedAt: r.applied_at, details: parse(r.details) };
}

function toOutbox(r: OutboxRow): OutboxMessage {
  return {
    id: r.id,
    kind: r.kind,
    account: r.account,
    payload: JSON.parse(r.payload),
    createdAt: r.created_at,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    sentAt: r.sent_at,
    lastError: r.last_error,
    gaveUp: r.gave_up !== 0,
  } as OutboxMessage;
}

export class SqliteMonitorStore implements MonitorStore {
  private ownChanges = 0;

  constructor(private readonly db: Db) {
    db.exec(SCHEMA);
  }

  activeBlocks(): TollBlock[] {
    return (this.db.prepare('SELECT * FROM account_blocks ORDER BY applied_at').all() as BlockRow[]).map(toBlock);
  }

  activeBlock(account: string): TollBlock | undefined {
    const r = this.db.prepare('SELECT * FROM account_blocks WHERE account = ?').get(account) as BlockRow | undefined;
    return r && toBlock(r);
  }

  block(req: BlockRequest, notifications: OutboxItem[] = []): { created: boolean; block: TollBlock } {
    const tx = this.db.transaction((): { created: boolean; block: TollBlock } => {
      const existing = this.activeBlock(req.account);
      if (existing) return { created: false, block: existing };
      this.db
        .prepare('INSERT INTO account_blocks (account, reason, rule, blocked_by, applied_at, details) VALUES (?, ?, ?, ?, ?, ?)')
        .run(req.account, req.reason, req.rule, req.by, req.at, json(req.details ?? null));
      this.db
        .prepare("INSERT INTO account_block_history (account, action, at, by_whom, reason, forced) VALUES (?, 'block', ?, ?, ?, 0)")
        .run(req.account, req.at, req.by, req.reason);
      this.audit({ at: req.at, actor: req.actor ?? req.by, action: 'block', account: req.account, reason: req.reason, details: { rule: req.rule, ...(req.details ?? {}) } });
      this.enqueue(notifications, req.at);
      return { created: true, block: this.activeBlock(req.account)! };
    });
    const r = tx.immediate();
    this.ownChanges++;
    return r;
  }

  unblock(account: string, by: string, reason: string, forced: boolean, at: number, actor: string): TollBlock | undefined {
    const tx = this.db.transaction((): TollBlock | undefined => {
      const existing = this.activeBlock(account);
      if (!existing) return undefined;
      this.db.prepare('DELETE FROM account_blocks WHERE account = ?').run(account);
      this.db
        .prepare("INSERT INTO account_block_history (account, action, at, by_whom, reason, forced) VALUES (?, 'unblock', ?, ?, ?, ?)")
        .run(account, at, by, reason, forced ? 1 : 0);
      this.audit({ at, actor, action: forced ? 'unblock_forced' : 'unblock', account, reason, details: { blockedAt: existing.appliedAt, blockReason: existing.reason } });
      return existing;
    });
    const r = tx.immediate();
    this.ownChanges++;
    return r;
  }

  recordPasswordReset(account: string, by: string, at: number, actor: string): void {
    this.db.transaction(() => {
      this.db.prepare('INSERT INTO password_resets (account, at, by_whom) VALUES (?, ?, ?)').run(account, at, by);
      this.audit({ at, actor, action: 'password_reset', account, reason: 'SIP password changed', details: { by } });
    }).immediate();
    this.ownChanges++;
  }

  passwordResets(account: string): PasswordReset[] {
    return this.db
      .prepare('SELECT account, at, by_whom AS by FROM password_resets WHERE account = ? ORDER BY at DESC, id DESC')
      .all(account) as PasswordReset[];
  }

  history(account?: string): BlockHistoryEntry[] {
    const rows = (account === undefined
      ? this.db.prepare('SELECT * FROM account_block_history ORDER BY at, id').all()
      : this.db.prepare('SELECT * FROM account_block_history WHERE account = ? ORDER BY at, id').all(account)) as Array<{
      account: string; action: 'block' | 'unblock'; at: number; by_whom: string; reason: string; forced: number;
    }>;
    return rows.map((r) => ({ account: r.account, action: r.action, at: r.at, by: r.by_whom, reason: r.reason, forced: r.forced !== 0 }));
  }

  audit(rec: NewAudit): void {
    this.db
      .prepare('INSERT INTO audit_log (at, actor, action, account, reason, details) VALUES (?, ?, ?, ?, ?, ?)')
      .run(rec.at, rec.actor, rec.action, rec.account, rec.reason, json(rec.details));
    this.ownChanges++;
  }

  auditTrail(account?: string, limit = 100): AuditRecord[] {
    const rows = (account === undefined
      ? this.db.prepare('SELECT * FROM audit_log ORDER BY id DESC LIMIT ?').all(limit)
      : this.db.prepare('SELECT * FROM audit_log WHERE account = ? ORDER BY id DESC LIMIT ?').all(account, limit)) as Array<
      Omit<AuditRecord, 'details'> & { details: string | null }
    >;
    return rows.map((r) => ({ ...r, details: parse(r.details) }));
  }

  enqueue(items: OutboxItem[], at: number): void {
    const insert = this.db.prepare('INSERT INTO notify_outbox (kind, account, payload, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?)');
    for (const i of items) insert.run(i.kind, i.account, JSON.stringify(i.payload), at, at);
    if (items.length > 0) this.ownChanges++;
  }

  dueOutbox(now: number, limit: number): OutboxMessage[] {
    return (this.db
      .prepare('SELECT * FROM notify_outbox WHERE sent_at IS NULL AND gave_up = 0 AND next_attempt_at <= ? ORDER BY id LIMIT ?')
      .all(now, limit) as OutboxRow[]).map(toOutbox);
  }

  unsentOutbox(): OutboxMessage[] {
    return (this.db.prepare('SELECT * FROM notify_outbox WHERE sent_at IS NULL ORDER BY id').all() as OutboxRow[]).map(toOutbox);
  }

  outbox(account?: string): OutboxMessage[] {
    return ((account === undefined
      ? this.db.prepare('SELECT * FROM notify_outbox ORDER BY id').all()
      : this.db.prepare('SELECT * FROM notify_outbox WHERE account = ? ORDER BY id').all(account)) as OutboxRow[]).map(toOutbox);
  }

  markSent(id: number, at: number): void {
    this.db.prepare('UPDATE notify_outbox SET sent_at = ?, attempts = attempts + 1, last_error = NULL WHERE id = ?').run(at, id);
    this.ownChanges++;
  }

  markFailed(id: number, error: string, nextAttemptAt: number, giveUp: boolean): void {
    this.db
      .prepare('UPDATE notify_outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, gave_up = ? WHERE id = ?')
      .run(error, nextAttemptAt, giveUp ? 1 : 0, id);
    this.ownChanges++;
  }

  seenRegions(): RegionSeen[] {
    return this.db.prepare('SELECT account, region, last_seen AS lastSeen FROM monitor_regions_seen').all() as RegionSeen[];
  }

  recordRegions(seen: RegionSeen[]): void {
    if (seen.length === 0) return;
    const up = this.db.prepare(
      `INSERT INTO monitor_regions_seen (account, region, last_seen) VALUES (?, ?, ?) ON CONFLICT (account, region) DO UPDATE SET last_seen = CASE WHEN substr(region, 1, 1) = '#' THEN MIN(last_seen, excluded.last_seen) ELSE MAX(last_seen, excluded.last_seen) END`,
    );
    this.db.transaction(() => {
      for (const s of seen) up.run(s.account, s.region, s.lastSeen);
    })();
    this.ownChanges++;
  }

  changeToken(): number {
    // data_version moves on other connections' commits only; ownChanges covers ours.
    return (this.db.pragma('data_version', { simple: true }) as number) * 1_000_000 + this.ownChanges;
  }

  close(): void {
    this.db.close();
  }
}
