import type { CompiledRules } from '../rules/compile';
import type { ForwardMode } from '../rules/config-types';
import type { Verdict } from './types';

/**
 * How an admitted call is carried by the drachtio front end, decided from the rules alone so the
 * front end holds no policy: the forwarding mode (guard.yaml drachtio.mode, overridden per
 * account) and the longest the call may last once answered (the tighter of the account's own
 * cap and its destination class's limit).
 */

export type DestinationClass = 'domestic' | 'international' | 'high_risk_allowed';

export interface Forwarding {
  mode: ForwardMode;
  destinationClass: DestinationClass;
  /** Seconds from answer; undefined = no limit beyond the core's slot backstop. */
  maxCallSeconds?: number;
}

export function forwardingFor(rules: CompiledRules, v: Verdict): Forwarding {
  const drachtio = rules.guard.drachtio;
  const account = v.account !== undefined ? rules.account(v.account) : undefined;
  // An admitted call to a high-risk prefix got through only by the account's allow_destinations.
  const destinationClass: DestinationClass =
    v.normalised !== undefined && rules.highRisk.lookup(v.normalised) !== undefined
      ? 'high_risk_allowed'
      : v.international === true
        ? 'international'
        : 'domestic';
  const classLimit = drachtio?.max_call_seconds?.[destinationClass];
  const accountLimit = account?.drachtio?.maxCallSeconds;
  const limits = [classLimit, accountLimit].filter((n): n is number => n !== undefined);
  const out: Forwarding = {
    mode: account?.drachtio?.mode ?? drachtio?.mode ?? 'proxy',
    destinationClass,
  };
  if (limits.length > 0) out.maxCallSeconds = Math.min(...limits);
  return out;
}
