import type { Logger } from 'winston';
import type { GuardCore } from './core/guard-core';
import { handCompromisedToMonitor } from './defense/hand-over';
import { startDefense, type DefenseHandle } from './defense/start';
import { startMonitor, type RunningMonitor } from './monitor/start';
import { SqliteMonitorStore } from './store/sqlite-monitor-store';
import { openDatabase, storePath, type Db } from './store/sqlite';
import type { RuleStore } from './rules/rule-store';
import type { CallControl } from './sip/call-events';
import type { ScreenHost } from './sip/request-screen';

export interface GuardServices {
  defense: DefenseHandle;
  monitor: RunningMonitor;
  /** Stops following rule edits and SIGHUP, then the front end, then the monitor and the defense. False when already stopped. */
  stop(): Promise<boolean>;
}

/**
 * What runs around either front end, in the order that keeps the guard honest from its first
 * packet: the defense (stored bans in force), then the fraud monitor (stored toll blocks in the
 * core), then the front end itself; a failure at any step stops what already started. Then the
 * defense's compromised accounts are handed to the monitor, and rule edits (and SIGHUP) start to
 * be followed.
 */
export async function startAroundFrontEnd(o: {
  rules: RuleStore;
  core: GuardCore;
  host: ScreenHost;
  calls: CallControl;
  logger: Logger;
  stateFile?: string;
  /** Watch rules/ for edits (default true); SIGHUP reloads them either way. */
  watch?: boolean;
  startFrontEnd: () => Promise<void>;
  stopFrontEnd: () => Promise<void>;
}): Promise<GuardServices> {
  // One connection for both: the defense's bans and the monitor's blocks live in the same file.
  // The monitor's store closes it, after the defense has stopped.
  const file = storePath(o.rules.current.guard.store?.path, o.stateFile);
  let db: Db;
  try {
    db = openDatabase(file);
  } catch (err) {
    throw new Error(`cannot open the state store ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  let defense: DefenseHandle;
  try {
    defense = startDefense({ frontEnd: o.host, rules: o.rules, logger: o.logger, stateFile: o.stateFile, db });
  } catch (err) {
    db.close();
    throw err;
  }
  let monitor: RunningMonitor;
  try {
    monitor = startMonitor({ rules: o.rules, core: o.core, policy: o.host, calls: o.calls, logger: o.logger, store: new SqliteMonitorStore(db) });
  } catch (err) {
    defense.stop();
    db.close();
    throw err;
  }
  try {
    await o.startFrontEnd();
  } catch (err) {
    defense.stop();
    await monitor.stop();
    throw err;
  }
  handCompromisedToMonitor(defense, monitor);

  if (o.watch !== false) o.rules.watch();
  const onHangup = (): void => {
    o.rules.reload('SIGHUP');
  };
  process.on('SIGHUP', onHangup);

  let stopped = false;
  return {
    defense,
    monitor,
    async stop() {
      if (stopped) return false;
      stopped = true;
      process.off('SIGHUP', onHangup);
      o.rules.close();
      await o.stopFrontEnd();
      defense.stop();
      await monitor.stop();
      return true;
    },
  };
}
