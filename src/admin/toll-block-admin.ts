/**
 * What an admin may do to toll blocks, whatever the door (CLI, admin HTTP API), over any
 * MonitorStore. The rule of the unblock flow lives here: a block is lifted only when a SIP
 * password reset was recorded after it was applied, unless forced with a reason. Every change
 * leaves an audit record (the store writes it in the same transaction).
 */
import type { MonitorStore, OutboxItem, TollBlock } from '../store/monitor-store';

export type AdminResult<T = undefined> = { ok: true; value: T; message: string } | { ok: false; message: string };

const iso = (ms: number): string => new Date(ms).toISOString();

export function recordPasswordReset(store: MonitorStore, account: string, by: string, actor: string, now: number): AdminResult {
  store.recordPasswordReset(account, by, now, actor);
  const block = store.activeBlock(account);
  const next = block ? ` The toll block applied at ${iso(block.appliedAt)} can now be lifted with: tollguard unblock ${account} --by NAME` : '';
  return { ok: true, value: undefined, message: `Password reset recorded for ${account} at ${iso(now)} by ${by}.${next}` };
}

export interface UnblockRequest {
  account: string;
  by: string;
  actor: string;
  force?: boolean;
  reason?: string;
  now: number;
}

export function unblockAccount(store: MonitorStore, r: UnblockRequest): AdminResult<TollBlock> {
  const block = store.activeBlock(r.account);
  if (!block) return { ok: false, message: `Account ${r.account} has no toll block in force; nothing to lift.` };
  if (r.force) {
    if (!r.reason?.trim()) return { ok: false, message: 'A forced unblock needs --reason TEXT saying why the password-reset rule is overridden.' };
  } else {
    const reset = store.passwordResets(r.account)[0];
    if (!reset || reset.at <= block.appliedAt) {
      const last = reset ? ` The last recorded reset (${iso(reset.at)}) is older than the block.` : ' No password reset has ever been recorded for it.';
      return {
        ok: false,
        message:
          `Refused: account ${r.account} was blocked at ${iso(block.appliedAt)} (${block.reason}) and no SIP password reset has been recorded since.${last}\n` +
          `Reset the account's SIP password, record it with "tollguard password-reset ${r.account}", then unblock; ` +
          'or override with --force --reason TEXT.',
      };
    }
  }
  const reason = r.reason?.trim() || 'password reset recorded after the block';
  const lifted = store.unblock(r.account, r.by, reason, r.force === true, r.now, r.actor)!;
  return { ok: true, value: lifted, message: `Toll block on ${r.account} lifted by ${r.by}${r.force ? ' (forced)' : ''}: international calling is re-enabled.` };
}

export function blockAccount(
  store: MonitorStore,
  r: { account: string; reason: string; by: string; actor: string; now: number },
  notifications: (b: TollBlock) => OutboxItem[],
): AdminResult<TollBlock> {
  if (!r.reason.trim()) return { ok: false, message: 'A block needs --reason TEXT.' };
  const probe: TollBlock = { account: r.account, reason: r.reason, rule: null, by: r.by, appliedAt: r.now, details: null };
  const { created, block } = store.block({ account: r.account, reason: r.reason, rule: null, by: r.by, actor: r.actor, at: r.now }, notifications(probe));
  if (!created) return { ok: false, message: `Account ${r.account} is already blocked since ${iso(block.appliedAt)} (${block.reason}).` };
  return { ok: true, value: block, message: `International toll block applied to ${r.account} by ${r.by}: ${r.reason}` };
}

/** A plain-text report of blocks, their history, password resets, unsent notifications and recent audit records. */
export function statusReport(store: MonitorStore, account?: string): string {
  const out: string[] = [];
  const blocks = store.activeBlocks().filter((b) => account === undefined || b.account === account);
  if (account !== undefined) {
    const b = blocks[0];
    out.push(b ? `${account}: BLOCKED (international) since ${iso(b.appliedAt)} by ${b.by}${b.rule ? `, rule ${b.rule}` : ''}: ${b.reason}` : `${account}: not blocked`);
    const resets = store.passwordResets(account);
    out.push(resets.length === 0 ? 'password resets: none recorded' : `password resets: ${resets.map((p) => `${iso(p.at)} by ${p.by}`).join('; ')}`);
    const hist = store.history(account);
    out.push('history:');
    if (hist.length === 0) out.push('  (none)');
    for (const h of hist) out.push(`  ${iso(h.at)} ${h.action}${h.forced ? ' (forced)' : ''} by ${h.by}: ${h.reason}`);
    out.push('audit:');
    const audit = store.auditTrail(account, 20);
    if (audit.length === 0) out.push('  (none)');
    for (const a of audit) out.push(`  ${iso(a.at)} ${a.action} by ${a.actor}${a.reason ? `: ${a.reason}` : ''}`);
  } else {
    out.push(blocks.length === 0 ? 'no toll blocks in force' : `${blocks.length} toll block${blocks.length === 1 ? '' : 's'} in force:`);
    for (const b of blocks) out.push(`  ${b.account}  since ${iso(b.appliedAt)}  by ${b.by}${b.rule ? `  rule ${b.rule}` : ''}  ${b.reason}`);
  }
  const unsent = store.unsentOutbox().filter((m) => account === undefined || m.account === account);
  if (unsent.length > 0) {
    out.push('notifications not yet delivered:');
    for (const m of unsent) {
      out.push(`  #${m.id} ${m.kind} for ${m.account ?? '-'}: ${m.attempts} attempt(s)${m.gaveUp ? ', GIVEN UP' : ''}${m.lastError ? `, last error: ${m.lastError}` : ''}`);
    }
  }
  return out.join('\n');
}
