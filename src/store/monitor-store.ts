/**
 * What the fraud monitor and the admin commands keep: international toll blocks, their history,
 * SIP password-reset records, the audit trail, the notification outbox, and which destination
 * regions each account has called (so "new country" and "dormant account" survive a restart).
 *
 * An interface, so SQLite (the default, sqlite-monitor-store.ts), memory (unit tests) and a later
 * Redis store are interchangeable. Rules such as "unblock only after a password reset" live in
 * the callers (admin/toll-block-admin.ts), not here: every store gets them for free.
 * All times are wall-clock milliseconds.
 */

export interface TollBlock {
  account: string;
  /** Human reason: the monitor's finding, or the admin's --reason. */
  reason: string;
  /** Monitor rule that fired (intl_per_minute, ...), or null for a block by hand. */
  rule: string | null;
  /** "monitor" or the admin's name. */
  by: string;
  appliedAt: number;
  /** Figures and destinations behind the block (JSON-safe). */
  details: Record<string, unknown> | null;
}

export interface BlockHistoryEntry {
  account: string;
  action: 'block' | 'unblock';
  at: number;
  by: string;
  reason: string;
  forced: boolean;
}

export interface PasswordReset {
  account: string;
  at: number;
  by: string;
}

export interface AuditRecord {
  id: number;
  at: number;
  /** Who: "monitor", "cli:<name>", "api:<name>". */
  actor: string;
  action: string;
  account: string | null;
  reason: string | null;
  details: Record<string, unknown> | null;
}

export type NewAudit = Omit<AuditRecord, 'id'>;

export interface EmailPayload {
  to: string[];
  cc: string[];
  subject: string;
  text: string;
}

export interface WebhookPayload {
  url: string;
  body: Record<string, unknown>;
}

export type OutboxItem =
  | { kind: 'email'; account: string | null; payload: EmailPayload }
  | { kind: 'webhook'; account: string | null; payload: WebhookPayload };

export type OutboxMessage = OutboxItem & {
  id: number;
  createdAt: number;
  attempts: number;
  nextAttemptAt: number;
  sentAt: number | null;
  lastError: string | null;
  /** Retries exhausted: kept (and shown by `status`) rather than dropped. */
  gaveUp: boolean;
};

export interface RegionSeen {
  account: string;
  /**
   * Destination region (calling code, NANP area code: see monitor/region.ts), or a number range
   * marked with a leading '#' ("#+4470123456"). For regions the latest time is kept (last seen);
   * for ranges the earliest (first called).
   */
  region: string;
  lastSeen: number;
}

export interface BlockRequest {
  account: string;
  reason: string;
  rule: string | null;
  by: string;
  /** Who acted, for the audit trail ("monitor", "cli:alice"); defaults to by. */
  actor?: string;
  at: number;
  details?: Record<string, unknown> | null;
}

export interface MonitorStore {
  activeBlocks(): TollBlock[];
  activeBlock(account: string): TollBlock | undefined;
  /**
   * Applies a block, with its history entry, audit record and notifications, in one transaction.
   * An account already blocked keeps its first block (created false) and nothing is queued:
   * one block, one email.
   */
  block(req: BlockRequest, notifications?: OutboxItem[]): { created: boolean; block: TollBlock };
  /** Lifts the block (history + audit in one transaction); undefined when there was none. */
  unblock(account: string, by: string, reason: string, forced: boolean, at: number, actor: string): TollBlock | undefined;
  recordPasswordReset(account: string, by: string, at: number, actor: string): void;
  /** Newest first. */
  passwordResets(account: string): PasswordReset[];
  /** Oldest first; all accounts when account is undefined. */
  history(account?: string): BlockHistoryEntry[];
  audit(rec: NewAudit): void;
  /** Newest first. */
  auditTrail(account?: string, limit?: number): AuditRecord[];
  enqueue(items: OutboxItem[], at: number): void;
  /** Unsent, not given up, due at `now`. */
  dueOutbox(now: number, limit: number): OutboxMessage[];
  /** Every message not yet sent (pending or given up), for status. */
  unsentOutbox(): OutboxMessage[];
  outbox(account?: string): OutboxMessage[];
  markSent(id: number, at: number): void;
  markFailed(id: number, error: string, nextAttemptAt: number, giveUp: boolean): void;
  seenRegions(): RegionSeen[];
  recordRegions(seen: RegionSeen[]): void;
  /** Changes whenever the stored data changed, by this process or another (the CLI). */
  changeToken(): number;
  close(): void;
}
