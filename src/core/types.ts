/**
 * The decision core's vocabulary: what a front end extracts from an INVITE (CallAttempt) and
 * what the core answers (Verdict). No SIP parsing or I/O happens in core/.
 */

/** What a front end knows of one initial INVITE. */
export interface CallAttempt {
  /** Source IP as the socket saw it, IPv4 dotted or IPv6 text (no port, no brackets). */
  source: string;
  /** Request-URI user (sip:USER@host) or tel: number, %-unescaped, without URI parameters. */
  dialled: string;
  /** The ;phone-context parameter of the Request-URI user or tel: URI, if any ("+64", "example.com"). */
  phoneContext?: string;
  /** Digest username from Authorization / Proxy-Authorization. */
  authUser?: string;
  /** User part of P-Asserted-Identity. */
  assertedUser?: string;
  /** User part of From. */
  fromUser?: string;
  /** Call-ID, for logs and observers. */
  callId: string;
  /**
   * The slot handle (Verdict.slot) this Call-ID already holds, when the front end sees a repeated
   * initial INVITE for a call it admitted: the call keeps that slot instead of counting twice.
   */
  heldSlot?: number;
  /** Milliseconds, from the same clock for every call (Date.now() or a test clock). */
  now: number;
}

/** Which rule decided. 'allow' when every check passed. */
export type RuleId =
  | 'allow'
  | 'source'                // outside the guard-wide allowed_sources
  | 'account_source'        // outside the account's own allowed_sources
  | 'unknown_caller'        // no account matched and unknown_caller is reject
  | 'invalid_destination'   // dialled string is not a number we can read
  | 'international'         // account has international: false
  | 'high_risk'             // longest high-risk prefix matched, not allowed for the account
  | 'toll_block'            // international call from an account under an international toll block
  | 'calls_per_second'
  | 'calls_per_minute'
  | 'concurrent_calls';

export interface Verdict {
  allow: boolean;
  rule: RuleId;
  /** SIP status to answer with when rejecting (0 when allowed). */
  status: number;
  /** SIP reason phrase when rejecting. */
  reason: string;
  /** Human text for the Warning / X-Reason header and logs, e.g. "high-risk destination +252 Somalia". */
  detail: string;
  /** Seconds for a Retry-After header (rate limits). */
  retryAfter?: number;
  /** Account id the call was attributed to, if any. */
  account?: string;
  /**
   * Allowed calls only: the handle of the concurrent-call slot taken for the call. The front end
   * keeps it with its per-call record and hands it back to release() / touch() / isAdmitted().
   */
  slot?: number;
  /** E.164 with '+' when the dialled string was a number. */
  normalised?: string;
  /** True when the destination is outside the account's country; undefined if not decided yet. */
  international?: boolean;
  /**
   * Rule high_risk only: the domestic number the caller probably meant when the high-risk number
   * looks like a misdialled prefix (DialPlan.misdialOf). The fraud monitor forgives one such attempt.
   */
  misdial?: string;
}
