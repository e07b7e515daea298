/**
 * The "country" of a destination, for the new-country and destination detectors: its calling
 * code ("+252"), except inside the North American Numbering Plan, where +1 covers 25 countries:
 * there the US/Canada share "+1" and every other NANP country is its area code ("+1876" Jamaica),
 * which is exactly where NANP toll fraud goes.
 */
import { DialPlan, callingCodeLength } from '../core/dial-plan';

const US = DialPlan.for('US');
const CA = DialPlan.for('CA');

export function regionOf(e164: string): string {
  const at = e164.charCodeAt(0) === 43 ? 1 : 0;
  const n = callingCodeLength(e164, at);
  if (n === 0) return e164.slice(0, at + 3);
  if (n === 1 && e164.charCodeAt(at) === 49 /* 1 */) {
    if (US.isDomestic(e164) || CA.isDomestic(e164)) return '+1';
    return '+' + e164.slice(at, at + 4);
  }
  return '+' + e164.slice(at, at + n);
}
