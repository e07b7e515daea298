/**
 * Issue 5's hand-over, shared by both front ends (serve.ts, serve-drachtio.ts): an account whose
 * password was guessed from many sources and that then calls abroad from a new source is
 * compromised; the fraud monitor blocks it like one of its own critical findings (store, core,
 * live calls, email).
 */
import type { RunningMonitor } from '../monitor/start';
import type { DefenseHandle } from './start';

export function handCompromisedToMonitor(defense: DefenseHandle, monitor: Pick<RunningMonitor, 'report'>): void {
  defense.defense.on('compromised', (e) => {
    // A username that maps to no account has nothing the monitor could block.
    if (e.account === undefined) return;
    monitor.report({
      account: e.account,
      rule: 'credential_stuffing',
      level: 'critical',
      value: e.evidence.failures,
      threshold: e.evidence.failures,
      detail: `credential stuffing: ${e.evidence.failures} refused logins for ${e.user} from ${e.evidence.failingSources.length} sources, then a login from new source ${e.source} calling ${e.dialled}`,
      at: e.at,
      destinations: [e.dialled],
    });
  });
}
