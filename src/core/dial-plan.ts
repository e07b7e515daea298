import { Metadata, getCountryCallingCode, type CountryCode } from 'libphonenumber-js/core';
import metadataJson from 'libphonenumber-js/metadata.min.json';

/**
 * Reading a dialled string the way the home network would, from libphonenumber-js metadata
 * compiled once per country into sticky regexes and bitmasks. libphonenumber's parse() costs
 * tens of microseconds; normalise() does one character scan and at most a few anchored regex
 * tests, so it can run on every INVITE.
 *
 * Order of rules (visual separators, space - . ( ), are dropped first):
 *  - only [0-9*#], no separators, starting with * or #: a service code; no digits at all: an
 *    on-net name (sip:alice@...); letters mixed with digits, or nothing: invalid;
 *  - a leading '+', or a phone-context of "+digits" (prepended, as RFC 3966 says): global;
 *  - the home IDD prefix (NZ 00, NANP 011, AU 0011): stripped, global;
 *  - the home national prefix (0, NANP 1; with its transform rule): stripped, national;
 *  - the home calling code followed by a national number (carriers' "6495550111"): national;
 *  - anything else: a national number.
 * A number is international unless it carries the home calling code and, where that code is
 * shared (+1, +7, +44, +61, ...), its leading digits belong to the home country per metadata.
 */

export type Normalised =
  | { kind: 'number'; e164: string; international: boolean }
  | { kind: 'service' }
  | { kind: 'invalid'; why: string };

const SERVICE: Normalised = Object.freeze({ kind: 'service' as const });
const invalid = (why: string): Normalised => Object.freeze({ kind: 'invalid' as const, why });
const EMPTY = invalid('no digits');
const MIXED = invalid('letters mixed with digits');
const MARKS = invalid("'*' or '#' inside a number");
const TOO_LONG = invalid('more than 15 digits');
const NO_NATIONAL = invalid('no national number');
const CC_ZERO = invalid('country calling code cannot start with 0');
const CC_UNKNOWN = invalid('unknown country calling code');
const BAD_CONTEXT = invalid('phone-context is not a global number');

/** The parts of libphonenumber's NumberingPlan this module reads (present at runtime, not all typed). */
interface PlanInternals {
  IDDPrefix(): string;
  nationalPrefix(): string | undefined;
  nationalPrefixForParsing(): string | undefined;
  nationalPrefixTransformRule(): string | undefined;
  nationalNumberPattern(): string;
  possibleLengths(): number[] | undefined;
  leadingDigits(): string | undefined;
}

function planOf(country: string): PlanInternals {
  const m = new Metadata(metadataJson);
  m.selectNumberingPlan(country as CountryCode);
  return m.numberingPlan as unknown as PlanInternals;
}

// Calling codes are prefix-free, so at most one of 1, 2 or 3 leading digits is a code.
const CC_BY_LENGTH = [new Uint8Array(0), new Uint8Array(10), new Uint8Array(100), new Uint8Array(1000)];
for (const cc of [...Object.keys(metadataJson.country_calling_codes), ...Object.keys(metadataJson.nonGeographic ?? {})]) {
  CC_BY_LENGTH[cc.length][Number(cc)] = 1;
}

/** Length of the calling code at s[at] (digits assumed), or 0 when none is assigned. */
export function callingCodeLength(s: string, at: number): number {
  let v = 0;
  for (let n = 1; n <= 3 && at + n <= s.length; n++) {
    v = v * 10 + (s.charCodeAt(at + n - 1) - 48);
    if (CC_BY_LENGTH[n][v] === 1) return n;
  }
  return 0;
}

export function isKnownCountry(country: string): boolean {
  return country !== '001' && Object.prototype.hasOwnProperty.call(metadataJson.countries, country);
}

const MAX_DIALLED_DIGITS = 24;

const isSeparator = (c: number): boolean => c === 32 || c === 45 || c === 46 || c === 40 || c === 41;

/** The digits of s from `from`, joined run by run (fewer allocations than char by char). */
function digitsOnly(s: string, from: number): string {
  let out = '';
  let run = -1;
  for (let i = from; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 0;
    if (c >= 48 && c <= 57) {
      if (run < 0) run = i;
    } else if (run >= 0) {
      out += s.slice(run, i);
      run = -1;
    }
  }
  return out;
}

/** Digits of a global phone-context ("+64", "+1-212"), or null when it has anything else. */
function contextDigits(ctx: string): string | null {
  for (let i = 1; i < ctx.length; i++) {
    const c = ctx.charCodeAt(i);
    if (!(c >= 48 && c <= 57) && !isSeparator(c)) return null;
  }
  const d = digitsOnly(ctx, 1);
  return d.length === 0 ? null : d;
}

const POSSIBLE = 0;
const TOO_SHORT = 1;
const TOO_LONG_LEN = 2;
const INVALID_LENGTH = 3;

/** How the home country tells its own numbers from others that share its calling code. */
const DOMESTIC_ALL = 0; // the calling code is not shared, or no sharer has leading digits
const DOMESTIC_OWN = 1; // home has leading digits: only numbers matching them are domestic
const DOMESTIC_NOT_OTHERS = 2; // main country of a shared code: everything the others do not claim

const sticky = (pattern: string): RegExp => new RegExp(`(?:${pattern})`, 'y');

export class DialPlan {
  private static readonly cache = new Map<string, DialPlan>();

  /** The compiled plan for an ISO alpha-2 country (cached: plans are immutable). Throws if unknown. */
  static for(country: string): DialPlan {
    const code = country.toUpperCase();
    let plan = DialPlan.cache.get(code);
    if (!plan) {
      if (!isKnownCountry(code)) throw new Error(`unknown country "${country}"`);
      plan = new DialPlan(code);
      DialPlan.cache.set(code, plan);
    }
    return plan;
  }

  readonly country: string;
  readonly callingCode: string;
  private readonly plusCode: string;
  private readonly idd: RegExp;
  private readonly npp: RegExp | null;
  private readonly nppAnchored: RegExp | null;
  private readonly transform: string | null;
  /** The national prefix as dialled ("0" in NZ), for the misdial reading; null when there is none. */
  private readonly nationalPrefix: string | null;
  private readonly nationalPattern: RegExp;
  private readonly lengthMask: number;
  private readonly minLength: number;
  private readonly maxLength: number;
  private readonly domesticMode: number;
  private readonly domesticRe: RegExp | null;

  private constructor(country: string) {
    const plan = planOf(country);
    this.country = country;
    this.callingCode = getCountryCallingCode(country as CountryCode, metadataJson);
    this.plusCode = '+' + this.callingCode;
    this.idd = sticky(plan.IDDPrefix());
    const npp = plan.nationalPrefixForParsing();
    this.npp = npp ? sticky(npp) : null;
    this.nppAnchored = npp ? new RegExp(`^(?:${npp})`) : null;
    this.transform = plan.nationalPrefixTransformRule() || null;
    this.nationalPrefix = plan.nationalPrefix() || null;
    this.nationalPattern = new RegExp(`^(?:${plan.nationalNumberPattern()})$`);
    const lengths = plan.possibleLengths() ?? [];
    // No length data means libphonenumber treats every length as possible.
    this.lengthMask = lengths.length ? lengths.reduce((m, l) => m | (1 << l), 0) : 0x7ffffffe;
    this.minLength = lengths.length ? Math.min(...lengths) : 1;
    this.maxLength = lengths.length ? Math.max(...lengths) : 15;

    const own = plan.leadingDigits();
    const others = (metadataJson.country_calling_codes[this.callingCode] ?? [])
      .filter((c) => c !== country)
      .map((c) => planOf(c).leadingDigits())
      .filter((ld): ld is string => !!ld);
    if (own) {
      this.domesticMode = DOMESTIC_OWN;
      this.domesticRe = sticky(own);
    } else if (others.length) {
      this.domesticMode = DOMESTIC_NOT_OTHERS;
      this.domesticRe = sticky(others.map((ld) => `(?:${ld})`).join('|'));
    } else {
      this.domesticMode = DOMESTIC_ALL;
      this.domesticRe = null;
    }
  }

  /** Reads a Request-URI user / tel: number. See the module comment for the order of rules. */
  normalise(dialled: string, phoneContext?: string): Normalised {
    const len = dialled.length;
    let digits = 0;
    let separators = 0;
    let others = 0;
    let marks = 0;
    let plusAt = -1;
    for (let i = 0; i < len; i++) {
      const c = dialled.charCodeAt(i);
      if (c >= 48 && c <= 57) digits++;
      else if (isSeparator(c)) separators++;
      else if (c === 42 || c === 35) marks++;
      else if (c === 43 && digits === 0 && plusAt < 0 && marks === 0) plusAt = i;
      else others++;
    }
    if (marks > 0) {
      const first = dialled.charCodeAt(0);
      return (first === 42 || first === 35) && others === 0 && separators === 0 && plusAt < 0 ? SERVICE : MARKS;
    }
    if (digits === 0) return others > 0 && plusAt < 0 ? SERVICE : EMPTY;
    if (others > 0) return MIXED;
    // Longest real input: an IDD of up to 8 digits (AU carrier-select) plus 15 E.164 digits.
    if (digits > MAX_DIALLED_DIGITS) return TOO_LONG;

    if (plusAt >= 0) {
      return plusAt === 0 && separators === 0 ? this.global(dialled, 1) : this.global(digitsOnly(dialled, plusAt + 1), 0);
    }
    const d = separators === 0 ? dialled : digitsOnly(dialled, 0);
    if (phoneContext !== undefined && phoneContext.charCodeAt(0) === 43) {
      const ctx = contextDigits(phoneContext);
      return ctx === null ? BAD_CONTEXT : this.global(ctx + d, 0);
    }
    const idd = this.idd;
    idd.lastIndex = 0;
    if (idd.test(d)) {
      const at = idd.lastIndex;
      // libphonenumber's rule: a 0 after the IDD means it was not an IDD (no calling code starts with 0).
      if (at < d.length && d.charCodeAt(at) !== 48) return this.global(d, at);
    }
    const national = this.stripNationalPrefix(d) ?? this.stripOwnCallingCode(d) ?? d;
    return this.domestic(national);
  }

  /**
   * "Possible misdial": the caller meant a domestic number but typed the international prefix
   * instead of the national one (in NZ, 00252... typed for 0252..., which reads as Somalia +252).
   * Returns the national-format number probably meant ("0252612345") when the dialled digits start
   * with the international prefix and the rest is a possible, pattern-valid national number of
   * this country; otherwise undefined. Compiled metadata only (the same length set and national
   * number pattern that normalise() uses), so it costs a regex test, not a libphonenumber parse.
   */
  misdialOf(dialled: string): string | undefined {
    if (this.nationalPrefix === null) return undefined;
    const d = /^[0-9]+$/.test(dialled) ? dialled : digitsOnly(dialled, 0);
    if (d.length === 0 || d.length !== dialled.replace(/[\s.()-]/g, '').length) return undefined;
    const idd = this.idd;
    idd.lastIndex = 0;
    if (!idd.test(d)) return undefined;
    const rest = d.slice(idd.lastIndex);
    if (rest.length === 0 || this.lengthFit(rest.length) !== POSSIBLE || !this.nationalPattern.test(rest)) return undefined;
    return this.nationalPrefix + rest;
  }

  /** True when the E.164 number ("+..." or digits) is inside this plan's country. */
  isDomestic(e164: string): boolean {
    const at = e164.charCodeAt(0) === 43 ? 1 : 0;
    return e164.startsWith(this.callingCode, at) && this.isDomesticAt(e164, at + this.callingCode.length);
  }

  /** s holds E.164 digits from at (s itself is "+digits" when at is 1). */
  private global(s: string, at: number): Normalised {
    const n = s.length - at;
    if (n > 15) return TOO_LONG;
    if (n === 0) return EMPTY;
    if (s.charCodeAt(at) === 48) return CC_ZERO;
    const ccLen = callingCodeLength(s, at);
    if (ccLen === 0) return CC_UNKNOWN;
    if (n === ccLen) return NO_NATIONAL;
    const e164 = at === 1 && s.charCodeAt(0) === 43 ? s : '+' + (at === 0 ? s : s.slice(at));
    const home = ccLen === this.callingCode.length && s.startsWith(this.callingCode, at) && this.isDomesticAt(s, at + ccLen);
    return { kind: 'number', e164, international: !home };
  }

  private domestic(national: string): Normalised {
    if (national.length === 0) return NO_NATIONAL;
    if (national.length + this.callingCode.length > 15) return TOO_LONG;
    return { kind: 'number', e164: this.plusCode + national, international: !this.isDomesticAt(national, 0) };
  }

  private isDomesticAt(s: string, at: number): boolean {
    if (this.domesticMode === DOMESTIC_ALL) return true;
    const re = this.domesticRe!;
    re.lastIndex = at;
    const hit = re.test(s);
    return this.domesticMode === DOMESTIC_OWN ? hit : !hit;
  }

  /**
   * libphonenumber's national-prefix rule: strip (or transform) the prefix, but not when that
   * turns a valid-looking national number into an invalid one or leaves too few digits.
   */
  private stripNationalPrefix(d: string): string | null {
    const re = this.npp;
    if (re === null) return null;
    re.lastIndex = 0;
    if (!re.test(d)) return null;
    const matched = re.lastIndex;
    let national: string;
    if (this.transform !== null) {
      const m = this.nppAnchored!.exec(d)!;
      national = m.length > 1 && m[m.length - 1] ? d.replace(this.nppAnchored!, this.transform) : d.slice(matched);
    } else {
      national = d.slice(matched);
    }
    if (national === d) return null;
    if (!this.nationalPattern.test(national) && this.nationalPattern.test(d)) return null;
    const fit = this.lengthFit(national.length);
    return fit === TOO_SHORT || fit === INVALID_LENGTH ? null : national;
  }

  /** Carriers often send E.164 without the '+' ("6495550111"); take it when only that reading fits. */
  private stripOwnCallingCode(d: string): string | null {
    const cc = this.callingCode;
    if (d.length <= cc.length || !d.startsWith(cc)) return null;
    const rest = d.slice(cc.length);
    const restFits = this.lengthFit(rest.length) === POSSIBLE && this.nationalPattern.test(rest);
    const wholeFits = this.lengthFit(d.length) === POSSIBLE && this.nationalPattern.test(d);
    return restFits && !wholeFits ? rest : null;
  }

  private lengthFit(n: number): number {
    if (n < 31 && (this.lengthMask & (1 << n)) !== 0) return POSSIBLE;
    if (n < this.minLength) return TOO_SHORT;
    if (n > this.maxLength) return TOO_LONG_LEN;
    return INVALID_LENGTH;
  }
}
