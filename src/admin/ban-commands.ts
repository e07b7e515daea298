/**
 * `tollguard bans` and `tollguard unban IP`: the admin's view of the source bans in the guard's
 * SQLite file. They work whether or not a guard is running; a running guard sees an unban within
 * a second (it polls the database's data_version).
 */
import { isIP } from 'node:net';
import type { Command } from 'commander';
import { loadRuleSet } from '../rules/load';
import { RulesError } from '../rules/config-types';
import { SqliteBanStore, type Ban } from '../store/ban-store';
import { openDatabase, storePath } from '../store/sqlite';

interface StoreOptions {
  rules: string;
  state?: string;
}

/** The database file: --state, else guard.yaml's store.path, else the default. */
function databaseFile(o: StoreOptions): string {
  if (o.state !== undefined) return storePath(undefined, o.state);
  try {
    return storePath(loadRuleSet(o.rules).guard.store?.path);
  } catch (err) {
    const why = err instanceof RulesError ? err.problems.map((p) => `${p.at}: ${p.message}`).join('; ') : String(err);
    throw new Error(`cannot read ${o.rules}/guard.yaml to find the store (${why}); pass --state FILE`);
  }
}

function withStore<T>(o: StoreOptions, fn: (s: SqliteBanStore) => T): T {
  const db = openDatabase(databaseFile(o));
  try {
    return fn(new SqliteBanStore(db));
  } finally {
    db.close();
  }
}

function row(b: Ban, now: number): string {
  const left = Math.max(0, Math.round((b.expiresAt - now) / 1000));
  const ua = typeof b.evidence.userAgent === 'string' ? ` ua=${JSON.stringify(b.evidence.userAgent)}` : '';
  return `${b.address}\t${b.reason}\t${new Date(b.appliedAt).toISOString()}\t${new Date(b.expiresAt).toISOString()} (${left} s left)\toffence ${b.offence}\t${b.detail}${ua}`;
}

export function registerBanCommands(program: Command): void {
  program
    .command('bans')
    .description('list the source bans in force: address, reason, applied, expiry, evidence')
    .option('--rules <dir>', 'rules directory (guard.yaml store.path names the database)', 'rules')
    .option('--state <file>', 'the SQLite database file, instead of guard.yaml store.path')
    .option('--json', 'one JSON object per ban, with the full evidence')
    .action((o: StoreOptions & { json?: boolean }) => {
      const now = Date.now();
      const bans = withStore(o, (s) => s.active(now));
      if (o.json) {
        for (const b of bans) process.stdout.write(JSON.stringify(b) + '\n');
        return;
      }
      if (bans.length === 0) {
        process.stdout.write('no bans in force\n');
        return;
      }
      process.stdout.write('address\treason\tapplied\texpires\toffence\tdetail\n');
      for (const b of bans) process.stdout.write(row(b, now) + '\n');
    });

  program
    .command('unban')
    .description('lift the ban on one source address (a running guard lets it in again within a second)')
    .argument('<ip>', 'the banned address')
    .option('--rules <dir>', 'rules directory (guard.yaml store.path names the database)', 'rules')
    .option('--state <file>', 'the SQLite database file, instead of guard.yaml store.path')
    .option('--by <who>', 'who lifts it (recorded with the ban)', process.env.USER ?? 'cli')
    .action((ip: string, o: StoreOptions & { by: string }) => {
      if (isIP(ip) === 0) throw new Error(`"${ip}" is not an IP address (a ban covers exactly one address)`);
      const n = withStore(o, (s) => s.lift(ip, o.by, Date.now()));
      if (n === 0) {
        process.stderr.write(`no ban in force for ${ip}\n`);
        process.exitCode = 1;
        return;
      }
      process.stdout.write(`ban on ${ip} lifted\n`);
    });
}
