/**
 * Reads and validates the three rule files of a rules directory. Every problem of every file is
 * collected before anything is thrown, so an admin fixes a broken edit in one round, and every
 * problem carries "dir/file.yaml:LINE".
 *
 * A missing high-risk-destinations.yaml is an error, like the other two files: an absent list
 * would silently switch the high-risk check off. An explicit empty list (`[]`) is accepted, so
 * turning the check off is always a visible, deliberate edit.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Document, LineCounter, Node as YamlNode, isAlias, isMap, isNode, isScalar, isSeq, parseDocument } from 'yaml';
import type { z } from 'zod';
import { RulesError, type RuleFile, type RuleProblem, type RuleSet } from './config-types';
import { accountsSchema, guardSchema, highRiskSchema } from './schema';
import { monitorFileSchema } from './monitor-schema';
import { defenseSchema, fingerprintsSchema, parseBlocklist, type BlocklistEntry } from './defense-schema';

export const RULE_FILES: Readonly<Record<RuleFile, string>> = {
  guard: 'guard.yaml',
  accounts: 'accounts.yaml',
  'high-risk': 'high-risk-destinations.yaml',
  monitor: 'monitor.yaml',
  defense: 'defense.yaml',
  fingerprints: 'scanner-fingerprints.yaml',
  blocklist: 'blocklist.txt',
};

/** Files a rules directory may leave out (the attack-source defense's); the others are required. */
const OPTIONAL_FILES: ReadonlySet<RuleFile> = new Set(['defense', 'fingerprints', 'blocklist']);

type Path = ReadonlyArray<string | number>;

interface ParsedFile {
  display: string;
  doc?: Document;
  lines?: LineCounter;
}

/** Loads dir/{guard,accounts,high-risk-destinations}.yaml; throws RulesError listing every problem. */
export function loadRuleSet(dir: string): RuleSet {
  const problems: RuleProblem[] = [];
  const dirProblem = checkDir(dir);
  if (dirProblem) throw new RulesError([{ at: dir, message: dirProblem }]);

  const files = {} as Record<RuleFile, ParsedFile>;
  const guard = readFile(dir, 'guard', guardSchema, problems, files);
  const accounts = readFile(dir, 'accounts', accountsSchema, problems, files, quoteUsers);
  const highRisk = readFile(dir, 'high-risk', highRiskSchema, problems, files);
  // Optional: without it the monitor runs on its built-in thresholds.
  const monitor = fs.existsSync(path.join(dir, RULE_FILES.monitor)) ? readFile(dir, 'monitor', monitorFileSchema, problems, files) : undefined;
  files.monitor ??= { display: path.join(dir, RULE_FILES.monitor) };
  const defense = readFile(dir, 'defense', defenseSchema, problems, files);
  const fingerprints = readFile(dir, 'fingerprints', fingerprintsSchema, problems, files);
  const blocklist = readBlocklist(dir, problems, files);

  if (problems.length > 0 || guard === undefined || accounts === undefined || highRisk === undefined) {
    throw new RulesError(sortProblems(problems));
  }
  return {
    dir,
    guard,
    accounts,
    highRisk,
    monitor,
    ...(defense !== undefined && { defense }),
    ...(fingerprints !== undefined && { fingerprints }),
    ...(blocklist !== undefined && { blocklist }),
    where: (file, p) => {
      const f = files[file];
      return f.doc && f.lines ? `${f.display}:${lineOf(f.doc, f.lines, p)}` : f.display;
    },
  };
}

function checkDir(dir: string): string | undefined {
  try {
    if (!fs.statSync(dir).isDirectory()) return 'not a directory: expected the rules directory';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'rules directory not found' : `cannot read the rules directory (${code ?? String(err)})`;
  }
  return undefined;
}

/**
 * Reads, parses and validates one file. Schema validation is skipped when YAML itself failed,
 * because a half-parsed document only produces follow-on noise; the other files still run.
 */
function readFile<S extends z.ZodType>(
  dir: string,
  file: RuleFile,
  schema: S,
  problems: RuleProblem[],
  files: Record<RuleFile, ParsedFile>,
  fixup?: (doc: Document, data: unknown, lines: LineCounter, display: string, problems: RuleProblem[]) => void,
): z.output<S> | undefined {
  const display = path.join(dir, RULE_FILES[file]);
  files[file] = { display };
  let text: string;
  try {
    text = fs.readFileSync(display, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && OPTIONAL_FILES.has(file)) return undefined;
    const message =
      code === 'ENOENT'
        ? `file not found: every rules directory needs ${RULE_FILES.guard}, ${RULE_FILES.accounts} and ${RULE_FILES['high-risk']}`
        : `cannot read the file (${code ?? String(err)})`;
    problems.push({ at: display, message });
    return undefined;
  }

  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true, strict: true });
  files[file] = { display, doc, lines };
  // Warnings too (an unknown !tag, say): a value YAML could only half-read is not a rule to trust.
  const yamlIssues = [...doc.errors, ...doc.warnings];
  for (const e of yamlIssues) {
    const line = e.linePos?.[0]?.line ?? lines.linePos(e.pos[0]).line;
    problems.push({ at: `${display}:${line}`, message: yamlMessage(e.code, e.message, text, e.pos[0]) });
  }
  if (yamlIssues.length > 0) return undefined;

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    problems.push({ at: `${display}:1`, message: `cannot read the YAML: ${(err as Error).message}` });
    return undefined;
  }
  const before = problems.length;
  fixup?.(doc, data, lines, display, problems);

  const result = schema.safeParse(data, { reportInput: true });
  if (!result.success) {
    for (const issue of result.error.issues) problems.push(...issueProblems(issue, doc, lines, display));
  }
  return result.success && problems.length === before ? result.data : undefined;
}

/** blocklist.txt is plain text: its own line parser reports file:line problems. */
function readBlocklist(dir: string, problems: RuleProblem[], files: Record<RuleFile, ParsedFile>): BlocklistEntry[] | undefined {
  const display = path.join(dir, RULE_FILES.blocklist);
  files.blocklist = { display };
  let text: string;
  try {
    text = fs.readFileSync(display, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    problems.push({ at: display, message: `cannot read the file (${code ?? String(err)})` });
    return undefined;
  }
  return parseBlocklist(text, display, problems);
}

/** yaml's pretty messages end with " at line L, column C:" and a code excerpt; the line is in `at`. */
function yamlMessage(code: string, message: string, text: string, offset: number): string {
  const first = message.replace(/ at line \d+, column \d+:[\s\S]*$/, '').trim();
  if (code === 'DUPLICATE_KEY') {
    const key = /^[^\s:#,\]}]+|^"[^"]*"|^'[^']*'/.exec(text.slice(offset))?.[0];
    return key ? `duplicate key ${key}: each key may appear only once in a mapping` : `duplicate key: ${first}`;
  }
  if (code === 'TAB_AS_INDENT') return `${first} (indent with spaces, not tabs)`;
  const lineStart = text.lastIndexOf('\n', offset - 1) + 1;
  const lineEnd = text.indexOf('\n', offset);
  const line = text.slice(lineStart, lineEnd < 0 ? undefined : lineEnd);
  // "[" starts a YAML list, so a bracketed IPv6 address must be quoted; the raw error only
  // talks about flow sequences, which says nothing to someone writing tcp:[::1]:5060.
  const hint = /[:\s]\[[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*\]/.test(line)
    ? ' (an IPv6 address in brackets must be quoted, e.g. "tcp:[::1]:5060")'
    : '';
  return `YAML syntax error: ${first}${hint}`;
}

/**
 * `users` entries are strings, but YAML reads an unquoted 6495550111 as a number. That is
 * accepted when the number's digits are exactly what was written; when YAML dropped a leading 0
 * or a '+', or read hex, an exponent or a float, the number is not what the admin meant, so it
 * is an error that asks for quotes. Either way the value handed to the schema is the text as
 * written, so the schema does not report the same entry a second time.
 */
function quoteUsers(doc: Document, data: unknown, lines: LineCounter, display: string, problems: RuleProblem[]): void {
  const accounts = isRecord(data) ? data.accounts : undefined;
  if (!isRecord(accounts)) return;
  for (const [id, account] of Object.entries(accounts)) {
    if (!isRecord(account) || !Array.isArray(account.users)) continue;
    const users = account.users as unknown[];
    users.forEach((u, i) => {
      if (typeof u !== 'number') return;
      const p: Path = ['accounts', id, 'users', i];
      const node = doc.getIn(p, true);
      const written = isScalar(node) && typeof node.source === 'string' ? node.source : String(u);
      users[i] = written;
      if (/^[1-9][0-9]*$/.test(written) && Number.isSafeInteger(u) && String(u) === written) return;
      let why = `YAML reads it as the number ${String(u)}`;
      if (/^0[0-9]+$/.test(written)) why = `YAML reads it as the number ${String(u)}, dropping the leading 0`;
      else if (/^\+[0-9]+$/.test(written)) why = `YAML reads it as the number ${String(u)}, dropping the +`;
      problems.push({
        at: `${display}:${lineOf(doc, lines, p)}`,
        message: `${formatPath(p)}: write "${written}" in quotes: unquoted, ${why}`,
      });
    });
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ---------------------------------------------------------------------------------------------
// zod issues -> problems

function issueProblems(issue: z.core.$ZodIssue, doc: Document, lines: LineCounter, display: string): RuleProblem[] {
  const p = issue.path as Path;
  const at = (q: Path, key = false) => `${display}:${lineOf(doc, lines, q, key)}`;

  if (issue.code === 'unrecognized_keys') {
    const messages = issue.message.split('\n');
    return issue.keys.map((k, i) => ({
      at: at([...p, k], true),
      message: `${formatPath(p, 'top level')}: ${messages[i] ?? `unknown key "${k}"`}`,
    }));
  }
  if (issue.code === 'invalid_type' && issue.input === undefined && p.length > 0) {
    const parent = p.slice(0, -1);
    const key = String(p[p.length - 1]);
    return [{ at: at(parent), message: `${formatPath(parent, 'top level')}: missing required key "${key}" (${issue.message})` }];
  }
  if (p.length === 0 && issue.code === 'invalid_type' && (issue.input === undefined || issue.input === null)) {
    const hint = issue.message.startsWith('expected a list') ? '; write [] to turn the check off deliberately' : '';
    return [{ at: at(p), message: `the file is empty: ${issue.message}${hint}` }];
  }
  const got = showsInput(issue) ? `, got ${describe(issue.input)}` : '';
  return [{ at: at(p), message: `${formatPath(p, 'top level')}: ${issue.message}${got}` }];
}

/** ", got X" helps for a wrong scalar or type; not when the message already quotes the value. */
function showsInput(issue: z.core.$ZodIssue): boolean {
  if (!('input' in issue) || issue.input === undefined || issue.input === '') return false;
  const v = issue.input;
  if (typeof v === 'object' && v !== null) return issue.code === 'invalid_type' || issue.code === 'too_small';
  return !issue.message.includes(typeof v === 'string' ? `"${v}"` : String(v));
}

function describe(v: unknown): string {
  if (v === null) return 'an empty value';
  if (Array.isArray(v)) return v.length === 0 ? 'an empty list' : 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return JSON.stringify(v);
  return String(v);
}

/** accounts.bob.users[1]; keys that are not plain identifiers are bracketed and quoted. */
export function formatPath(p: Path, root = ''): string {
  let out = '';
  for (const seg of p) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out === '' ? root : out;
}

// ---------------------------------------------------------------------------------------------
// path -> line

/**
 * The 1-based line of the value at `p`, or of the nearest existing parent. A mapping entry is
 * located by its key rather than its value: for a block mapping or list the value starts on the
 * next line, and "bob:" is the line an admin looks for. With `key`, the last segment names a key
 * of a mapping (an unknown key), so its own line is wanted.
 */
function lineOf(doc: Document, lines: LineCounter, p: Path, key = false): number {
  let node: unknown = doc.contents;
  let offset = startOf(node) ?? 0;
  for (let i = 0; i < p.length; i++) {
    if (isAlias(node)) node = node.resolve(doc);
    const seg = p[i];
    if (isMap(node)) {
      const pair = node.items.find((it) => isScalar(it.key) && String(it.key.value) === String(seg));
      if (!pair) break;
      offset = startOf(pair.key) ?? startOf(pair.value) ?? offset;
      if (key && i === p.length - 1) break;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg];
      if (item === undefined) break;
      offset = startOf(item) ?? offset;
      node = item;
    } else {
      break;
    }
  }
  return lines.linePos(offset).line;
}

function startOf(n: unknown): number | undefined {
  return isNode(n) ? (n as YamlNode).range?.[0] : undefined;
}

function sortProblems(problems: RuleProblem[]): RuleProblem[] {
  const files: string[] = [];
  const keyed = problems.map((p, index) => {
    const m = /^(.*?):(\d+)$/.exec(p.at);
    const file = m ? m[1] : p.at;
    if (!files.includes(file)) files.push(file);
    return { p, index, file: files.indexOf(file), line: m ? Number(m[2]) : 0 };
  });
  // Files stay in reading order; within a file by line, ties in the order they were found.
  keyed.sort((a, b) => a.file - b.file || a.line - b.line || a.index - b.index);
  return keyed.map((k) => k.p);
}
