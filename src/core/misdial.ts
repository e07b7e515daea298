import { Metadata, isValidPhoneNumber, type CountryCode } from 'libphonenumber-js/core';
import metadataJson from 'libphonenumber-js/metadata.min.json';

/**
 * "Possible misdial": a customer meant a domestic number but typed the international prefix
 * instead of the national one (in NZ, 00252... typed for 0252..., which reads as Somalia +252).
 * The core still refuses the call (it is high-risk as dialled), but says so in its detail, and
 * the fraud monitor forgives one such attempt instead of counting it towards a block.
 *
 * Pure; only called for calls already refused as high-risk, so libphonenumber's slower
 * validation costs nothing on the admitted path.
 */

interface Prefixes {
  idd: RegExp;
  national: string;
}

const cache = new Map<string, Prefixes | null>();

function prefixesOf(country: string): Prefixes | null {
  let p = cache.get(country);
  if (p !== undefined) return p;
  const m = new Metadata(metadataJson);
  m.selectNumberingPlan(country as CountryCode);
  const plan = m.numberingPlan as unknown as { IDDPrefix(): string; nationalPrefix(): string | undefined };
  const national = plan.nationalPrefix();
  p = national ? { idd: new RegExp(`^(?:${plan.IDDPrefix()})`), national } : null;
  cache.set(country, p);
  return p;
}

/**
 * The domestic number (national format, e.g. "0252612345") the caller probably meant, when the
 * dialled digits start with the country's international prefix and, read with the national prefix
 * instead, form a valid number of that country; otherwise undefined.
 */
export function possibleMisdial(dialled: string, country: string): string | undefined {
  const digits = dialled.replace(/[\s.()-]/g, '');
  if (!/^[0-9]+$/.test(digits)) return undefined;
  const p = prefixesOf(country);
  if (p === null) return undefined;
  const m = p.idd.exec(digits);
  if (m === null) return undefined;
  const meant = p.national + digits.slice(m[0].length);
  return isValidPhoneNumber(meant, country as CountryCode, metadataJson) ? meant : undefined;
}
