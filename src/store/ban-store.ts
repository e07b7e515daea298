/**
 * Source bans: who was shut out, why, on what evidence, and until when. Kept in the guard's one
 * SQLite database (table source_bans) so bans survive a restart and `tollguard unban` from the CLI
 * reaches the running guard; an in-memory implementation serves tests and benchmarks.
 *
 * Rows are never deleted: a lifted or expired ban stays as history, and the number of recent
 * bans of an address is what escalates the next one.
 */
import type { Db } from './sqlite';

export type BanReason = 'scanner' | 'flood' | 'auth_failures' | 'not_found';

export interface Ban {
  address: string;
  reason: BanReason;
  /** One human sentence: "47 REGISTER in 2 s (limit 40)". */
  detail: string;
  /** Counts, sample User-Agent, usernames tried: whatever made the case. */
  evidence: Record<string, unknown>;
  /** Wall-clock ms. */
  appliedAt: number;
  expiresAt: number;
  /** 1 for a first offence within the remember window, 2 for the next, ... */
  offence: number;
  liftedAt?: number;
  liftedBy?: string;
}

export interface BanStore {
  /** Records a new ban. */
  add(ban: Ban): void;
  /** Bans in force at `now` (not lifted, not expired), newest first. */
  active(now: number): Ban[];
  /** Lifts the bans in force for the address; returns how many were lifted. */
  lift(address: string, by: string, now: number): number;
  /** Bans of the address applied at or after `since` (lifted ones too): the escalation count. */
  countSince(address: string, since: number): number;
  /**
   * True when another process (the CLI) changed the store since the last call. Cheap enough to
   * poll a few times a second.
   */
  changedElsewhere(): boolean;
  close(): void;
}

interface BanRow {
  address: string;
  reason: BanReason;
  detail: string;
  evidence: string;
  applied_at: number;
  expires_at: number;
  offence: number;
  lifted_at: number | null;
  lifted_by: string | null;
}

export class SqliteBanStore implements BanStore {
  private readonly insert;
  private readonly selectActive;
  private readonly liftActive;
  private readonly count;
  private lastVersion: number;

  constructor(private readonly db: Db) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS source_bans (
        id         INTEGER PRIMARY KEY,
        address    TEXT    NOT NULL,
        reason     TEXT    NOT NULL,
        detail     TEXT    NOT NULL,
        evidence   TEXT    NOT NULL,
        applied_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        offence    INTEGER NOT NULL,
        lifted_at  INTEGER,
        lifted_by  TEXT
      );
      CREATE INDEX IF NOT EXISTS source_bans_address ON source_bans (address, applied_at);
      CREATE INDEX IF NOT EXISTS source_bans_live ON source_bans (expires_at) WHERE lifted_at IS NULL;
    `);
    this.insert = db.prepare(
      `INSERT INTO source_bans (address, reason, detail, evidence, applied_at, expires_at, offence)
       VALUES (@address, @reason, @detail, @evidence, @appliedAt, @expiresAt, @offence)`,
    );
    this.selectActive = db.prepare(
      'SELECT * FROM source_bans WHERE lifted_at IS NULL AND expires_at > ? ORDER BY applied_at DESC, id DESC',
    );
    this.liftActive = db.prepare(
      'UPDATE source_bans SET lifted_at = ?, lifted_by = ? WHERE address = ? AND lifted_at IS NULL AND expires_at > ?',
    );
    this.count = db.prepare('SELECT COUNT(*) AS n FROM source_bans WHERE address = ? AND applied_at >= ?');
    this.lastVersion = this.dataVersion();
  }

  add(ban: Ban): void {
    this.insert.run({ ...ban, evidence: JSON.stringify(ban.evidence) });
  }

  active(now: number): Ban[] {
    return (this.selectActive.all(now) as BanRow[]).map(fromRow);
  }

  lift(address: string, by: string, now: number): number {
    return this.liftActive.run(now, by, address, now).changes;
  }

  countSince(address: string, since: number): number {
    return (this.count.get(address, since) as { n: number }).n;
  }

  changedElsewhere(): boolean {
    // data_version moves only when another connection commits; our own writes leave it alone.
    const v = this.dataVersion();
    if (v === this.lastVersion) return false;
    this.lastVersion = v;
    return true;
  }

  close(): void {
    // The database belongs to whoever opened it (it holds other tables too).
  }

  private dataVersion(): number {
    return this.db.pragma('data_version', { simple: true }) as number;
  }
}

function fromRow(r: BanRow): Ban {
  const ban: Ban = {
    address: r.address,
    reason: r.reason,
    detail: r.detail,
    evidence: JSON.parse(r.evidence) as Record<string, unknown>,
    appliedAt: r.applied_at,
    expiresAt: r.expires_at,
    offence: r.offence,
  };
  if (r.lifted_at !== null) ban.liftedAt = r.lifted_at;
  if (r.lifted_by !== null) ban.liftedBy = r.lifted_by;
  return ban;
}

/** Same contract, no file: for unit tests and benchmarks. */
export class MemoryBanStore implements BanStore {
  private readonly rows: Ban[] = [];

  add(ban: Ban): void {
    this.rows.push({ ...ban });
  }

  active(now: number): Ban[] {
    return this.rows.filter((b) => b.liftedAt === undefined && b.expiresAt > now).reverse();
  }

  lift(address: string, by: string, now: number): number {
    let n = 0;
    for (const b of this.rows) {
      if (b.address === address && b.liftedAt === undefined && b.expiresAt > now) {
        b.liftedAt = now;
        b.liftedBy = by;
        n++;
      }
    }
    return n;
  }

  countSince(address: string, since: number): number {
    return this.rows.filter((b) => b.address === address && b.appliedAt >= since).length;
  }

  changedElsewhere(): boolean {
    return false;
  }

  close(): void {}
}
