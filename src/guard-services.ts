import type { Logger } from 'winston';
import type { GuardCore } from './core/guard-core';
import { handCompromisedToMonitor } from './defense/hand-over';
import { startDefense, type DefenseHandle } from './defense/start';
import { startMonitor, type RunningMonitor } from './monitor/start';
import type { RuleStore } from './rules/rule-store';
import type { CallControl } from './sip/call-events';
import type { ScreenHost } from './sip/request-screen';

export interface GuardServices {
  defense: DefenseHandle;
  monitor: RunningMonitor;
  stop(): Promise<void>;
}

/**
 * What runs around either front end, in the order that keeps the guard honest from its first
 * packet: the defense (stored bans in force), then the fraud monitor (stored toll blocks in the
 * core), then the front end itself; a failure at any step stops what already started. Then the
 * defense's compromised accounts are handed to the monitor.
 */
export async function startAroundFrontEnd(o: {
  rules: RuleStore;
  core: GuardCore;
  host: ScreenHost;
  calls: CallControl;
  logger: Logger;
  stateFile?: string;
  startFrontEnd: () => Promise<void>;
}): Promise<GuardServices> {
  const defense = startDefense({ frontEnd: o.host, rules: o.rules, logger: o.logger, stateFile: o.stateFile });
  let monitor: RunningMonitor;
  try {
    monitor = startMonitor({ rules: o.rules, core: o.core, policy: o.host, calls: o.calls, logger: o.logger, stateFile: o.stateFile });
  } catch (err) {
    defense.stop();
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
  return {
    defense,
    monitor,
    async stop() {
      await monitor.stop();
      defense.stop();
    },
  };
}
