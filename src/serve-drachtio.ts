import type { Logger } from 'winston';
import { GuardCore } from './core/guard-core';
import type { DefenseHandle } from './defense/start';
import { startAroundFrontEnd } from './guard-services';
import { createLogger } from './log';
import type { CompiledRules } from './rules/compile';
import type { DrachtioConfig } from './rules/config-types';
import { RuleStore } from './rules/rule-store';
import type { DrachtioConnectionSpec } from './sip/drachtio/connection';
import { DrachtioFrontEnd } from './sip/drachtio/front-end';
import { newSrf, type Srf } from './sip/drachtio/srf-types';
import type { CallControl } from './sip/call-events';
import { serve, type RunningGuard, type ServeOptions } from './serve';
import type { RunningMonitor } from './monitor/start';

/** Command-line overrides of guard.yaml's drachtio section. */
export interface DrachtioFlags {
  /** --drachtio HOST:PORT: connect to drachtio-server's admin port (inbound). */
  connect?: string;
  /** --drachtio-listen [IP:]PORT: drachtio-server connects to us (outbound). */
  listen?: string;
  /** --secret S */
  secret?: string;
}

export interface StartOptions extends ServeOptions {
  drachtio?: DrachtioFlags;
  /** Tests inject a fake or an instrumented Srf. */
  srf?: Srf;
}

export interface RunningDrachtioGuard {
  /** Observers (fraud monitor) plug in with frontEnd.addObserver(). */
  frontEnd: DrachtioFrontEnd;
  /** Live admitted calls and their teardown (b2bua calls; proxied calls cannot be ended). */
  calls: CallControl;
  core: GuardCore;
  store: RuleStore;
  /** The fraud monitor, the same as behind the embedded proxy. */
  monitor: RunningMonitor;
  /** The attack-source defense, the same as behind the embedded proxy (screens on frontEnd). */
  defense: DefenseHandle;
  stop(): Promise<void>;
}

/**
 * Starts whichever front end the configuration asks for: the drachtio-srf application when
 * --drachtio / --drachtio-listen is given or guard.yaml has a drachtio section, the embedded SIP
 * proxy otherwise. It is one or the other, never both: with drachtio-server in front, the SIP
 * ports belong to drachtio-server, and a second path to the core would bypass it.
 */
export async function startGuard(opts: StartOptions): Promise<RunningGuard | RunningDrachtioGuard> {
  const logger = opts.logger ?? createLogger('info');
  const store = RuleStore.open(opts.rulesDir, logger);
  const spec = connectionSpec(opts.drachtio ?? {}, store.current.guard.drachtio);
  if (spec === undefined) return serve({ ...opts, logger, store });
  return serveDrachtio({ ...opts, logger }, store, spec);
}

/** Wires rule files → decision core → drachtio front end; a rule reload swaps the core's rules. */
export async function serveDrachtio(opts: StartOptions, store: RuleStore, spec: DrachtioConnectionSpec): Promise<RunningDrachtioGuard> {
  const logger: Logger = opts.logger ?? createLogger('info');
  const rules = store.current;
  logger.level = rules.guard.log?.level ?? 'info';
  const core = new GuardCore(rules, { maxCallSeconds: rules.guard.sip.max_call_seconds });
  const upstream = opts.upstream ?? rules.guard.sip.upstream;
  const frontEnd = new DrachtioFrontEnd({
    srf: opts.srf ?? newSrf(),
    core,
    logger,
    connection: spec,
    upstream,
    decisionLog: rules.guard.log?.decisions ?? 'all',
  });

  store.on('swapped', (next: CompiledRules, previous: CompiledRules) => {
    core.swapRules(next);
    logger.level = next.guard.log?.level ?? 'info';
    frontEnd.setDecisionLog(next.guard.log?.decisions ?? 'all');
    warnAboutRestartOnly(logger, opts, previous, next);
  });

  if (spec.style === 'outbound' && (rules.guard.drachtio?.mode ?? 'proxy') === 'proxy') {
    // Verified against drachtio-server: in outbound mode it sends no CDRs to the app, and a
    // proxied BYE never reaches it, so a proxied call's concurrent-call slot is only given back by
    // the sip.max_call_seconds backstop.
    logger.warn({ message: 'outbound connections with mode proxy: the guard cannot see proxied calls end, so concurrent-call slots are held until sip.max_call_seconds; use mode b2bua with drachtio.listen' });
  }
  // Stored bans and toll blocks are in force before drachtio-server's first request (guard-services.ts).
  const services = await startAroundFrontEnd({
    rules: store, core, host: frontEnd, calls: frontEnd, logger, stateFile: opts.stateFile, watch: opts.watch,
    startFrontEnd: () => frontEnd.start(),
    stopFrontEnd: () => frontEnd.stop(),
  });
  const { defense, monitor } = services;

  logger.info({
    message: 'tollguard started',
    frontEnd: 'drachtio',
    drachtio: frontEnd.connection.description,
    mode: rules.guard.drachtio?.mode ?? 'proxy',
    upstream,
    rules: opts.rulesDir,
    ...rules.summary,
  });

  return {
    frontEnd,
    calls: frontEnd,
    core,
    store,
    monitor,
    defense,
    async stop() {
      if (await services.stop()) logger.info({ message: 'tollguard stopped' });
    },
  };
}

/** Flags win over guard.yaml; undefined means "no drachtio: run the embedded proxy". */
export function connectionSpec(flags: DrachtioFlags, config: DrachtioConfig | undefined): DrachtioConnectionSpec | undefined {
  if (flags.connect !== undefined && flags.listen !== undefined) {
    throw new Error('give --drachtio (connect to drachtio-server) or --drachtio-listen (drachtio-server connects to us), not both');
  }
  const secret = flags.secret ?? config?.secret;
  if (flags.connect !== undefined || flags.listen !== undefined) {
    if (secret === undefined) throw new Error('--secret is required with --drachtio / --drachtio-listen (or drachtio.secret in guard.yaml)');
    if (flags.connect !== undefined) {
      const { host, port } = splitHostPort(flags.connect, '--drachtio');
      if (host === undefined) throw new Error(`--drachtio ${flags.connect}: expected HOST:PORT`);
      return { style: 'inbound', host, port, secret };
    }
    const { host, port } = splitHostPort(flags.listen!, '--drachtio-listen');
    return { style: 'outbound', address: host ?? '0.0.0.0', port, secret };
  }
  if (flags.secret !== undefined && config === undefined) {
    throw new Error('--secret needs --drachtio HOST:PORT or --drachtio-listen PORT');
  }
  if (config === undefined) return undefined;
  if (config.host !== undefined) return { style: 'inbound', host: config.host, port: config.port ?? 9022, secret: secret! };
  return { style: 'outbound', address: config.listen_address ?? '0.0.0.0', port: config.listen!, secret: secret! };
}

/** "host:port", "[v6]:port" or a bare "port". */
function splitHostPort(text: string, flag: string): { host?: string; port: number } {
  const m = /^(?:\[([^\]]+)\]:|([^:]+):)?([0-9]{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) throw new Error(`${flag} ${text}: expected HOST:PORT (or PORT for --drachtio-listen)`);
  return { host: m[1] ?? m[2], port };
}

function warnAboutRestartOnly(logger: Logger, opts: StartOptions, prev: CompiledRules, next: CompiledRules): void {
  const changed: string[] = [];
  const a = prev.guard.drachtio;
  const b = next.guard.drachtio;
  if (opts.drachtio?.connect === undefined && opts.drachtio?.listen === undefined) {
    if (a?.host !== b?.host || a?.port !== b?.port || a?.listen !== b?.listen || a?.listen_address !== b?.listen_address || a?.secret !== b?.secret) {
      changed.push('drachtio connection');
    }
  }
  if (!opts.upstream && prev.guard.sip.upstream !== next.guard.sip.upstream) changed.push('sip.upstream');
  if (changed.length > 0) logger.warn({ message: 'rules reloaded; these settings take effect on restart', settings: changed });
}
