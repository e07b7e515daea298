import type { Logger } from 'winston';
import { GuardCore } from './core/guard-core';
import type { DefenseHandle } from './defense/start';
import { startAroundFrontEnd } from './guard-services';
import { createLogger } from './log';
import type { CompiledRules } from './rules/compile';
import { RuleStore } from './rules/rule-store';
import type { CallControl } from './sip/call-events';
import { EmbeddedCallControl } from './sip/embedded-call-control';
import { GuardPolicy } from './sip/guard-policy';
import { SipProxy } from './sip/proxy';
import type { RunningMonitor } from './monitor/start';

export interface ServeOptions {
  rulesDir: string;
  /** Command-line overrides of guard.yaml's sip.listen / sip.upstream. */
  listen?: string[];
  upstream?: string;
  logger?: Logger;
  /** Watch rules/ for edits (default true). */
  watch?: boolean;
  /** The rules already opened (startGuard reads them to choose the front end). */
  store?: RuleStore;
  /** Overrides guard.yaml store.path (the SQLite file of bans and blocks). */
  stateFile?: string;
}

export interface RunningGuard {
  proxy: SipProxy;
  core: GuardCore;
  store: RuleStore;
  /** Where screens (defense) and observers (fraud monitor) plug in. */
  policy: GuardPolicy;
  /** Live admitted calls and their teardown. */
  calls: CallControl;
  /** The fraud monitor (toll blocks, notifications). */
  monitor?: RunningMonitor;
  /** The attack-source defense (bans, scanners, floods, cracking, APIBAN). */
  defense?: DefenseHandle;
  stop(): Promise<void>;
}

/**
 * Wires the pipeline: rule files → compiled rules → decision core → embedded SIP proxy.
 * A rule reload swaps the core's rules atomically; the sockets stay as they are.
 */
export async function serve(opts: ServeOptions): Promise<RunningGuard> {
  const logger = opts.logger ?? createLogger('info');
  const store = opts.store ?? RuleStore.open(opts.rulesDir, logger);
  const rules = store.current;
  logger.level = rules.guard.log?.level ?? 'info';

  const core = new GuardCore(rules, { maxCallSeconds: rules.guard.sip.max_call_seconds });
  const policy = new GuardPolicy(core, logger, rules.guard.log?.decisions ?? 'all');
  const listen = opts.listen ?? rules.guard.sip.listen;
  const upstream = opts.upstream ?? rules.guard.sip.upstream;

  store.on('swapped', (next: CompiledRules, previous: CompiledRules) => {
    core.swapRules(next);
    logger.level = next.guard.log?.level ?? 'info';
    policy.setDecisionLog(next.guard.log?.decisions ?? 'all');
    warnAboutRestartOnlySettings(logger, opts, previous, next);
  });

  const proxy = new SipProxy({
    listen,
    upstream,
    udpBufferBytes: rules.guard.sip.udp_buffer_bytes,
    udpIo: rules.guard.sip.udp_io,
    overloadLagMs: rules.guard.sip.overload_lag_ms,
    maxConnectionsPerSource: rules.guard.sip.max_connections_per_source,
    policy,
    logger,
  });
  const calls = new EmbeddedCallControl(policy, proxy);
  // Stored bans and toll blocks are in force before the first packet (guard-services.ts).
  const services = await startAroundFrontEnd({
    rules: store, core, host: policy, calls, logger, stateFile: opts.stateFile, watch: opts.watch,
    startFrontEnd: () => proxy.start(),
    stopFrontEnd: () => proxy.stop(),
  });
  const { defense, monitor } = services;

  logger.info({
    message: 'tollguard started',
    listen: proxy.addresses(),
    upstream,
    rules: opts.rulesDir,
    ...rules.summary,
  });

  return {
    proxy,
    core,
    store,
    policy,
    calls,
    monitor,
    defense,
    async stop() {
      if (await services.stop()) logger.info({ message: 'tollguard stopped' });
    },
  };
}

/** Sockets are bound once; a reload that moves them says so instead of pretending. */
function warnAboutRestartOnlySettings(logger: Logger, opts: ServeOptions, prev: CompiledRules, next: CompiledRules): void {
  const changed: string[] = [];
  if (!opts.listen && prev.guard.sip.listen.join(',') !== next.guard.sip.listen.join(',')) changed.push('sip.listen');
  if (!opts.upstream && prev.guard.sip.upstream !== next.guard.sip.upstream) changed.push('sip.upstream');
  if (prev.guard.sip.udp_buffer_bytes !== next.guard.sip.udp_buffer_bytes) changed.push('sip.udp_buffer_bytes');
  if (prev.guard.sip.udp_io !== next.guard.sip.udp_io) changed.push('sip.udp_io');
  if (prev.guard.sip.overload_lag_ms !== next.guard.sip.overload_lag_ms) changed.push('sip.overload_lag_ms');
  if (prev.guard.sip.max_connections_per_source !== next.guard.sip.max_connections_per_source) changed.push('sip.max_connections_per_source');
  if (changed.length > 0) {
    logger.warn({ message: 'rules reloaded; these settings take effect on restart', settings: changed });
  }
}
