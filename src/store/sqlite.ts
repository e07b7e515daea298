/**
 * The one SQLite database a guard keeps its state in (blocks, bans, password resets, audit).
 * better-sqlite3 is synchronous: a few writes a minute and indexed reads cost microseconds, far less
 * than an async round trip would. WAL lets the CLI write while the guard runs; synchronous=NORMAL
 * in WAL mode survives a kill -9 of the process (only an OS crash can lose the last commits).
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';

export type Db = Database.Database;

export const DEFAULT_STORE_PATH = 'state/tollguard.db';

/** The database file for these rules: --state override, else guard.yaml store.path, else the default. */
export function storePath(configured: string | undefined, override?: string): string {
  return resolve(override ?? configured ?? DEFAULT_STORE_PATH);
}

export function openDatabase(file: string): Db {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  // The CLI and the guard write the same file; wait for each other instead of failing.
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  return db;
}
