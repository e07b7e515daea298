/** The fraud monitor's vocabulary: what it is told about calls, and what it concludes. */

export type Level = 'info' | 'warning' | 'critical';

export type MonitorRule =
  | 'intl_per_minute'
  | 'intl_per_hour'
  | 'rate_spike'
  | 'concurrent_intl'
  | 'same_destination'
  | 'distinct_destinations'
  | 'high_risk_attempts'
  | 'new_country'
  | 'dormant'
  | 'off_hours'
  | 'long_call'
  | 'possible_misdial'
  /** From the attack-source defense: password guessed from many sources, then used from a new one to call abroad. */
  | 'credential_stuffing';

/** One international call attempt, as the core decided it. Domestic calls are not monitored. */
export interface AttemptEvent {
  callId: string;
  account: string;
  /** Wall-clock ms. */
  at: number;
  e164: string;
  /** The core admitted it (else: refused as high-risk, or over a rate limit). */
  admitted: boolean;
  /** The core's rule (allow, high_risk, calls_per_minute, ...). */
  rule: string;
  /** The destination is on the high-risk list (refused, or admitted through allow_destinations). */
  highRisk: boolean;
  /** Refused as high-risk and looks like a misdialled domestic number: what was probably meant. */
  misdial?: string;
}

export interface Finding {
  account: string;
  rule: MonitorRule;
  level: Level;
  /** The figure that crossed the threshold (calls, ratio, minutes, ...). */
  value: number;
  threshold: number;
  /** One sentence for logs and emails, with the figures. */
  detail: string;
  at: number;
  /** The call that tipped it over, if one did. */
  callId?: string;
  /** The account's recent international destinations, newest first (at most 10). */
  destinations: string[];
}
