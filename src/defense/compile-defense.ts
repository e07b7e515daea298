/**
 * rules/defense.yaml + scanner-fingerprints.yaml + blocklist.txt + guard.yaml's trusted sources,
 * compiled into what the defense reads per request: CIDR tries and one regular expression per
 * fingerprinted header. Paid once per rule load, never per packet.
 */
import { CidrSet, CidrTrie } from '../core/cidr-trie';
import type { RuleSet } from '../rules/config-types';
import type { DefenseFile } from '../rules/defense-schema';

export interface FingerprintHeader {
  /** Header name as written in the rule file ("User-Agent"). */
  header: string;
  /** Every pattern of that header in one case-insensitive alternation. */
  pattern: RegExp;
  /** Pattern names in alternation order, to say which one matched. */
  names: string[];
  sources: RegExp[];
}

export interface CompiledDefense {
  /** false when rules/defense.yaml is absent: nothing is screened or banned. */
  readonly enabled: boolean;
  readonly settings: DefenseFile;
  /** never_ban plus guard.yaml's trusted allowed_sources: exempt from every ban and count. */
  readonly exempt: CidrSet;
  /** blocklist.txt, CIDR text by network (for the drop's evidence). */
  readonly blocklist: CidrTrie<string>;
  readonly blocklistSize: number;
  readonly fingerprints: readonly FingerprintHeader[];
  readonly fingerprintCount: number;
}

const DISABLED_SETTINGS: DefenseFile = {
  never_ban: [],
  bans: { durations_seconds: [300, 3600, 86400], remember_seconds: 7 * 86400 },
  scanners: { ban_seconds: 3600 },
  flood: { window_seconds: 2, limits: { default: 100 }, max_sources: 100_000 },
  auth_failures: {
    per_source: { max: 10, window_seconds: 300 },
    not_found: { max: 10, window_seconds: 300 },
    per_user: { max: 20, window_seconds: 3600, sources: 3 },
  },
};

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function compileDefense(set: RuleSet): CompiledDefense {
  const settings = set.defense ?? DISABLED_SETTINGS;
  const exempt = new CidrSet();
  for (const c of settings.never_ban) exempt.add(c);
  for (const c of set.guard.trusted_sources ?? []) exempt.add(c);
  exempt.trim();

  const blocklist = new CidrTrie<string>();
  for (const e of set.blocklist ?? []) blocklist.insert(e.cidr, e.cidr);
  blocklist.trim();

  const byHeader = new Map<string, { header: string; names: string[]; sources: string[] }>();
  for (const f of set.fingerprints ?? []) {
    const key = f.header.toLowerCase();
    let h = byHeader.get(key);
    if (!h) byHeader.set(key, (h = { header: f.header, names: [], sources: [] }));
    h.names.push(f.name);
    h.sources.push(f.contains !== undefined ? escapeRegex(f.contains) : f.regex!);
  }
  const fingerprints: FingerprintHeader[] = [...byHeader.values()].map((h) => ({
    header: h.header,
    names: h.names,
    // One regex a header: a miss (the common case) costs one scan of the header value.
    pattern: new RegExp(h.sources.map((s) => `(?:${s})`).join('|'), 'i'),
    sources: h.sources.map((s) => new RegExp(s, 'i')),
  }));

  return {
    enabled: set.defense !== undefined,
    settings,
    exempt,
    blocklist,
    blocklistSize: set.blocklist?.length ?? 0,
    fingerprints,
    fingerprintCount: set.fingerprints?.length ?? 0,
  };
}

/** Which fingerprint matched a message, given a way to read its headers; undefined when none. */
export function matchFingerprint(
  fps: readonly FingerprintHeader[],
  header: (name: string) => string | undefined,
): { name: string; header: string; value: string } | undefined {
  for (let i = 0; i < fps.length; i++) {
    const f = fps[i];
    const value = header(f.header);
    if (value === undefined || !f.pattern.test(value)) continue;
    const at = f.sources.findIndex((r) => r.test(value));
    return { name: f.names[Math.max(0, at)], header: f.header, value };
  }
  return undefined;
}
