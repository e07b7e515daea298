/**
 * The admin commands of the unblock flow: password-reset, unblock, block, status. They work on
 * the same SQLite file as the running guard (guard.yaml store.path, or --state), which follows
 * their changes within a second. A block by hand queues its email/webhook in the outbox; the
 * running guard delivers it.
 */
import type { Command } from 'commander';
import { userInfo } from 'node:os';
import { compileRules, type CompiledRules } from '../rules/compile';
import { RulesError } from '../rules/config-types';
import { loadRuleSet } from '../rules/load';
import { blockNotifications } from '../monitor/messages';
import { SqliteMonitorStore } from '../store/sqlite-monitor-store';
import { openDatabase, storePath } from '../store/sqlite';
import { blockAccount, recordPasswordReset, statusReport, unblockAccount, type AdminResult } from './toll-block-admin';

interface Common {
  rules: string;
  state?: string;
}

function whoAmI(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

class CliError extends Error {}

function open(o: Common, account?: string): { rules: CompiledRules; store: SqliteMonitorStore } {
  let rules: CompiledRules;
  try {
    rules = compileRules(loadRuleSet(o.rules));
  } catch (err) {
    if (err instanceof RulesError) throw new CliError(`the rules in ${o.rules} are not valid:\n${err.message}`);
    throw err;
  }
  if (account !== undefined && rules.account(account) === undefined) {
    throw new CliError(`unknown account "${account}": not in ${o.rules}/accounts.yaml`);
  }
  return { rules, store: new SqliteMonitorStore(openDatabase(storePath(rules.guard.store?.path, o.state))) };
}

function finish(r: AdminResult<unknown>): void {
  if (r.ok) process.stdout.write(r.message + '\n');
  else {
    process.stderr.write(r.message + '\n');
    process.exitCode = 1;
  }
}

function run(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    process.stderr.write(`tollguard: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}

const common = (c: Command): Command =>
  c.option('--rules <dir>', 'rules directory (for store.path, accounts and notify settings)', 'rules').option('--state <file>', 'SQLite state file (overrides guard.yaml store.path)');

export function registerAccountCommands(program: Command): void {
  common(
    program
      .command('password-reset <account>')
      .description("record that the account's SIP password was changed (allows a later unblock)")
      .option('--by <name>', 'who reset it', whoAmI()),
  ).action((account: string, o: Common & { by: string }) =>
    run(() => {
      const { store } = open(o, account);
      try {
        finish(recordPasswordReset(store, account, o.by, `cli:${o.by}`, Date.now()));
      } finally {
        store.close();
      }
    }),
  );

  common(
    program
      .command('unblock <account>')
      .description('lift the international toll block; refused unless a password reset was recorded after the block')
      .requiredOption('--by <name>', 'who lifts it')
      .option('--force', 'lift it without a password reset (needs --reason)')
      .option('--reason <text>', 'why'),
  ).action((account: string, o: Common & { by: string; force?: boolean; reason?: string }) =>
    run(() => {
      const { store } = open(o, account);
      try {
        finish(unblockAccount(store, { account, by: o.by, actor: `cli:${o.by}`, force: o.force, reason: o.reason, now: Date.now() }));
      } finally {
        store.close();
      }
    }),
  );

  common(
    program
      .command('block <account>')
      .description("apply an international toll block by hand (domestic calls go on); emails the holder and the NOC")
      .requiredOption('--reason <text>', 'why')
      .option('--by <name>', 'who applies it', whoAmI()),
  ).action((account: string, o: Common & { by: string; reason: string }) =>
    run(() => {
      const { rules, store } = open(o, account);
      try {
        const email = rules.account(account)?.email;
        finish(
          blockAccount(store, { account, reason: o.reason, by: o.by, actor: `cli:${o.by}`, now: Date.now() }, (block) =>
            blockNotifications({ block, accountEmail: email }, rules.guard.notify),
          ),
        );
      } finally {
        store.close();
      }
    }),
  );

  common(
    program.command('status [account]').description('toll blocks in force; for one account also its history, password resets and audit trail'),
  ).action((account: string | undefined, o: Common) =>
    run(() => {
      const { store } = open(o, account);
      try {
        process.stdout.write(statusReport(store, account) + '\n');
      } finally {
        store.close();
      }
    }),
  );
}
