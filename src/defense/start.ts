/**
 * Wires the attack-source defense into a running guard: the ban store in the guard's SQLite file,
 * the screens and the observer on the front end (embedded proxy or drachtio app), rule reloads, the APIBAN feed, and the
 * poll that makes `tollguard unban` from the CLI take effect within a quarter of a second.
 */
import type { Logger } from 'winston';
import type { CompiledRules } from '../rules/compile';
import type { RuleStore } from '../rules/rule-store';
import type { ScreenHost } from '../sip/request-screen';
import { MemoryBanStore, SqliteBanStore, type BanStore } from '../store/ban-store';
import { openDatabase, storePath, type Db } from '../store/sqlite';
import { ApibanFeed, type ApibanSettings } from './apiban-feed';
import { SourceDefense } from './source-defense';

export interface DefenseHandle {
  defense: SourceDefense;
  /** The APIBAN feed while defense.yaml configures one. */
  feed(): ApibanFeed | undefined;
  stop(): void;
}

export interface DefenseOptions {
  /** The embedded proxy's GuardPolicy or the DrachtioFrontEnd: screens in, call events out. */
  frontEnd: ScreenHost;
  rules: RuleStore;
  logger: Logger;
  /** Overrides guard.yaml store.path (tests). */
  stateFile?: string;
  /** The guard's database, already open (shared with the fraud monitor); not closed by stop(). */
  db?: Db;
  /** How often to look for bans changed by the CLI. */
  syncMs?: number;
}

export function startDefense(opts: DefenseOptions): DefenseHandle {
  const { frontEnd, rules, logger } = opts;
  const current = rules.current;
  const file = storePath(current.guard.store?.path, opts.stateFile);
  let db: Db | undefined;
  let store: BanStore;
  try {
    db = opts.db ?? openDatabase(file);
    store = new SqliteBanStore(db);
  } catch (err) {
    const why = `cannot open the ban store ${file}: ${err instanceof Error ? err.message : String(err)}`;
    // With the defense on, bans that silently vanish on restart would be a lie: refuse to start.
    // With it off (no defense.yaml), a guard that never needed the file must still start.
    if (current.defense.enabled) throw new Error(why);
    logger.warn({ message: `${why}; bans will be kept in memory only if the defense is turned on` });
    store = new MemoryBanStore();
  }
  const defense = new SourceDefense(current.defense, store, logger);

  frontEnd.addScreen({
    dropSource: (address) => defense.dropSource(address),
    screen: (req, from, arrivedAt) => (defense.enabled ? defense.screen(req.method, from.address, (name) => req.header(name), arrivedAt) : null),
  });
  frontEnd.addObserver({
    wantsUpstreamAnswers: () => defense.enabled,
    upstreamAnswered: (e) =>
      defense.answered({
        method: e.method,
        status: e.status,
        address: e.peer.address,
        authUser: e.authUser,
        toUser: e.toUser,
        fromUser: e.fromUser,
        userAgent: e.userAgent,
      }),
    decided: (e) =>
      defense.callDecided({
        address: e.peer.address,
        authUser: e.attempt.authUser,
        account: e.verdict.account,
        allowed: e.verdict.allow,
        international: e.verdict.international === true,
        dialled: e.attempt.dialled,
      }),
  });

  let feed: ApibanFeed | undefined;
  const applyFeed = (r: CompiledRules): void => {
    const a = r.defense.enabled ? r.defense.settings.apiban : undefined;
    if (a === undefined) {
      if (feed) {
        feed.stop();
        feed = undefined;
        defense.setFeed(new Set());
        logger.info({ message: 'apiban feed stopped (no longer configured)' });
      }
      return;
    }
    const settings: ApibanSettings = {
      url: a.url,
      intervalSeconds: a.interval_seconds,
      timeoutSeconds: a.timeout_seconds,
      keepSeconds: a.keep_seconds,
    };
    if (feed) return feed.update(settings);
    feed = new ApibanFeed(settings, (set) => defense.setFeed(set), logger);
    feed.start();
  };
  applyFeed(current);

  const onSwap = (next: CompiledRules): void => {
    defense.swapRules(next.defense);
    applyFeed(next);
  };
  rules.on('swapped', onSwap);

  const sync = setInterval(() => {
    try {
      defense.syncFromStore();
    } catch (err) {
      logger.error({ message: 'ban store sync failed', error: err instanceof Error ? err.message : String(err) });
    }
  }, opts.syncMs ?? 250);
  sync.unref();

  const d = current.defense;
  logger.info({
    message: d.enabled ? 'defense started' : 'defense off (no defense.yaml in the rules directory)',
    store: file,
    activeBans: defense.activeBans().length,
    blocklist: d.blocklistSize,
    fingerprints: d.fingerprintCount,
    apiban: d.settings.apiban !== undefined,
  });

  let stopped = false;
  return {
    defense,
    feed: () => feed,
    stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(sync);
      rules.off('swapped', onSwap);
      feed?.stop();
      if (opts.db === undefined) db?.close();
    },
  };
}
