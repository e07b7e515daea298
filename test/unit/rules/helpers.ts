import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export const SHIPPED = path.join(__dirname, '../../../rules');

export interface RuleTexts {
  guard?: string;
  accounts?: string;
  highRisk?: string;
}

const NAMES = { guard: 'guard.yaml', accounts: 'accounts.yaml', highRisk: 'high-risk-destinations.yaml' } as const;

/** A temp copy of the shipped rules with some files replaced (null-ish content = keep shipped). */
export function makeRulesDir(texts: RuleTexts = {}): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollguard-rules-'));
  for (const key of Object.keys(NAMES) as (keyof RuleTexts)[]) {
    const text = texts[key] ?? fs.readFileSync(path.join(SHIPPED, NAMES[key]), 'utf8');
    fs.writeFileSync(path.join(dir, NAMES[key]), text);
  }
  return dir;
}

export function writeRule(dir: string, key: keyof RuleTexts, text: string): void {
  fs.writeFileSync(path.join(dir, NAMES[key]), text);
}

/** Editor-style save: write a temp file beside it, then rename over the original. */
export function renameSave(dir: string, key: keyof RuleTexts, text: string): void {
  const tmp = path.join(dir, `.${NAMES[key]}.swp`);
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, path.join(dir, NAMES[key]));
}

export function fileOf(dir: string, key: keyof RuleTexts): string {
  return path.join(dir, NAMES[key]);
}

/** 1-based line of the only line of `text` containing `needle`. */
export function lineWith(text: string, needle: string): number {
  const lines = text.split('\n');
  const hits = lines.flatMap((l, i) => (l.includes(needle) ? [i + 1] : []));
  if (hits.length !== 1) throw new Error(`fixture: "${needle}" is on ${hits.length} lines`);
  return hits[0];
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

export const GOOD_ACCOUNTS = `defaults:
  international: true
  limits: { calls_per_second: 5, calls_per_minute: 60, concurrent_calls: 20 }
accounts:
  acme:
    sources: [127.0.0.10/32]
  bob:
    users: [bob, "6495550111"]
`;
