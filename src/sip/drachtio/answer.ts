import type { Verdict } from '../../core/types';
import { rejectionOf } from '../guard-policy';
import type { Rejection } from '../policy';
import type { DrachtioResponse } from './srf-types';

/**
 * The core's refusal as a drachtio final answer, with exactly the status, reason and headers the
 * embedded proxy sends (rejectionOf: Warning 399 tollguard "...", X-Reason, Retry-After).
 */
export function sendRejection(res: DrachtioResponse, verdict: Verdict): Rejection {
  const rejection = rejectionOf(verdict);
  res.send(rejection.status, rejection.reason, { headers: headersObject(rejection.headers ?? []) });
  return rejection;
}

/** drachtio-srf takes headers as an object; rejectionOf never repeats a name. */
export function headersObject(pairs: ReadonlyArray<readonly [string, string]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of pairs) out[name] = value;
  return out;
}
