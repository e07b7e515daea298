/**
 * The pieces every rule-file schema shares (guard, accounts, monitor, defense): strict mappings
 * whose unknown keys get a "did you mean", positive integers, and CIDRs checked and normalised
 * with ip-cidr. One place, so every file answers a typo or a bad address the same way.
 */
import { z } from 'zod';
import IPCIDR = require('ip-cidr');

// ---------------------------------------------------------------------------------------------
// Strict objects with "did you mean" suggestions

/**
 * unrecognized_keys carries every unknown key of one mapping in a single issue, but each key
 * deserves its own line number; the message holds one line per key, in the order of `keys`,
 * and load.ts splits it back up.
 */
export function strict<S extends z.core.$ZodLooseShape>(shape: S, what = 'a mapping') {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (iss) => {
      if (iss.code === 'unrecognized_keys') {
        return iss.keys.map((k) => unknownKeyMessage(k, known)).join('\n');
      }
      if (iss.code === 'invalid_type') return `expected ${what}`;
      return undefined;
    },
  });
}

function unknownKeyMessage(key: string, known: string[]): string {
  const best = closest(key, known);
  const hint = best ? `did you mean "${best}"?` : `allowed keys: ${known.join(', ')}`;
  return `unknown key "${key}" (${hint})`;
}

/** The known key within a small edit distance, so typos get a suggestion and nonsense does not. */
function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDist = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDist) {
      bestDist = d;
      best = c;
    }
  }
  const allowed = Math.max(2, Math.floor((best?.length ?? 0) / 3));
  return best !== undefined && bestDist <= allowed ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

// ---------------------------------------------------------------------------------------------
// Scalars

const POSITIVE_INT = 'expected a positive integer';
export const positiveInt = () =>
  z.number({ error: POSITIVE_INT }).int({ error: POSITIVE_INT }).positive({ error: POSITIVE_INT });

// ---------------------------------------------------------------------------------------------
// Addresses

const IPV4 = /^[0-9]{1,3}(\.[0-9]{1,3}){3}$/;

export function isIPv4(s: string): boolean {
  return IPV4.test(s) && IPCIDR.isValidAddress(s);
}

export function isIPv6(s: string): boolean {
  // ip-cidr/ip-address accept zone ids ("fe80::1%eth0") and embedded prefixes; neither has a
  // meaning in a rule file, so only plain hex-and-colon (optionally dotted-quad tail) text is let in.
  return /^[0-9A-Fa-f:.]+$/.test(s) && s.includes(':') && IPCIDR.isValidAddress(s);
}

/** Returns the normalised CIDR or an error message. */
export function checkCidr(raw: string): { ok: true; cidr: string } | { ok: false; message: string } {
  const s = raw.trim();
  if (!s.includes('/')) {
    if (isIPv4(s)) return { ok: true, cidr: `${s}/32` };
    if (isIPv6(s)) return { ok: true, cidr: `${s}/128` };
    return { ok: false, message: 'expected an IP address or CIDR such as 192.0.2.0/24 or 2001:db8::/32' };
  }
  const m = /^([^/]+)\/(0|[1-9][0-9]{0,2})$/.exec(s);
  const addr = m?.[1] ?? '';
  const v4 = isIPv4(addr);
  if (!m || !(v4 || isIPv6(addr))) {
    return { ok: false, message: 'expected a CIDR such as 192.0.2.0/24 or 2001:db8::/32' };
  }
  const bits = Number(m[2]);
  const max = v4 ? 32 : 128;
  if (bits > max) {
    return { ok: false, message: `expected a prefix length of 0-${max} for an IPv${v4 ? 4 : 6} CIDR` };
  }
  if (!IPCIDR.isValidCIDR(s)) return { ok: false, message: 'expected a CIDR such as 192.0.2.0/24 or 2001:db8::/32' };
  const c = new IPCIDR(s);
  if (c.addressStart.bigInteger().toString() !== c.address.bigInteger().toString()) {
    const network = c.addressStart.correctForm();
    return {
      ok: false,
      message:
        `host bits are set in this CIDR: write ${network}/${bits} for the network, ` +
        `or ${addr}/${max} (or just ${addr}) for the single host`,
    };
  }
  return { ok: true, cidr: s };
}

export const cidr = () =>
  z.string({ error: 'expected an IP address or CIDR such as 192.0.2.0/24' }).transform((s, ctx) => {
    const r = checkCidr(s);
    if (r.ok) return r.cidr;
    ctx.addIssue({ code: 'custom', message: r.message, input: s });
    return z.NEVER;
  });

