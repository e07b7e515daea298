/**
 * The words of the notifications: the toll-block email to the account holder and the NOC, the
 * warning email to the NOC, and the webhook body for ticketing systems. Pure text building.
 */
import type { EmailPayload, OutboxItem, TollBlock } from '../store/monitor-store';
import type { NotifyConfig } from '../rules/monitor-schema';
import type { Finding } from './types';

const iso = (ms: number): string => new Date(ms).toISOString();

export interface BlockNotice {
  block: TollBlock;
  /** The account holder's address from accounts.yaml, if any. */
  accountEmail?: string;
  finding?: Finding;
}

export function blockEmail(n: BlockNotice, notify: NotifyConfig): EmailPayload | undefined {
  const to = n.accountEmail ? [n.accountEmail] : notify.noc ? [notify.noc] : [];
  if (to.length === 0) return undefined;
  const cc = n.accountEmail && notify.noc ? [notify.noc] : [];
  const b = n.block;
  const f = n.finding;
  const destinations = f?.destinations ?? ((b.details?.destinations as string[] | undefined) ?? []);
  const support = notify.support ?? notify.noc ?? 'your provider\'s support team';
  const lines = [
    `An international toll block has been applied to account ${b.account}.`,
    '',
    `When:    ${iso(b.appliedAt)}`,
    `Account: ${b.account}`,
    `By:      ${b.by === 'monitor' ? 'automatic fraud monitor' : b.by}`,
    `Why:     ${b.reason}`,
  ];
  if (f) lines.push(`Rule:    ${f.rule} (${f.value} against a critical level of ${f.threshold})`);
  if (destinations.length > 0) {
    lines.push('', 'Recent international destinations called:');
    for (const d of destinations) lines.push(`  ${d}`);
  }
  lines.push(
    '',
    'International calls from this account are now refused. Domestic calls keep working.',
    '',
    'To have international calling re-enabled:',
    '  1. Reset the SIP password of every device and trunk on this account (use a strong password:',
    '     upper and lower case, digits and a special character; never the device default).',
    '  2. Secure your network: restrict SIP ports 5060/5061 and phone/router admin pages to your',
    '     provider\'s address range and your own admin addresses.',
    '  3. Review your billing records for calls you did not make.',
    `  4. Contact support (${support}) to confirm; international calling is re-enabled once the`,
    '     password reset is recorded.',
    '',
    '-- TollGuard fraud monitor',
  );
  return { to, cc, subject: `International toll block applied to account ${b.account}`, text: lines.join('\n') + '\n' };
}

export function warningEmail(f: Finding, notify: NotifyConfig): EmailPayload | undefined {
  if (!notify.noc) return undefined;
  const lines = [
    `Fraud monitor warning for account ${f.account} (no block applied).`,
    '',
    `When:    ${iso(f.at)}`,
    `Rule:    ${f.rule} (${f.value} against a warning level of ${f.threshold})`,
    `Detail:  ${f.detail}`,
  ];
  if (f.destinations.length > 0) lines.push('', 'Recent international destinations:', ...f.destinations.map((d) => `  ${d}`));
  return { to: [notify.noc], cc: [], subject: `Fraud warning: account ${f.account}, ${f.rule}`, text: lines.join('\n') + '\n' };
}

export function webhookBody(event: 'toll_block' | 'warning', account: string, at: number, detail: Record<string, unknown>): Record<string, unknown> {
  return { event, account, at: iso(at), source: 'tollguard', ...detail };
}

/** The email and webhook for a new block, as outbox items (queued with the block, in one transaction). */
export function blockNotifications(n: BlockNotice, notify: NotifyConfig | undefined): OutboxItem[] {
  if (!notify) return [];
  const out: OutboxItem[] = [];
  const email = notify.smtp && notify.from ? blockEmail(n, notify) : undefined;
  if (email) out.push({ kind: 'email', account: n.block.account, payload: email });
  if (notify.webhook_url) {
    out.push({
      kind: 'webhook',
      account: n.block.account,
      payload: {
        url: notify.webhook_url,
        body: webhookBody('toll_block', n.block.account, n.block.appliedAt, {
          reason: n.block.reason,
          rule: n.block.rule,
          by: n.block.by,
          value: n.finding?.value,
          threshold: n.finding?.threshold,
          destinations: n.finding?.destinations ?? n.block.details?.destinations ?? [],
        }),
      },
    });
  }
  return out;
}

export function warningNotifications(f: Finding, notify: NotifyConfig | undefined): OutboxItem[] {
  if (!notify) return [];
  const out: OutboxItem[] = [];
  const email = notify.smtp && notify.from ? warningEmail(f, notify) : undefined;
  if (email) out.push({ kind: 'email', account: f.account, payload: email });
  if (notify.webhook_url) {
    out.push({
      kind: 'webhook',
      account: f.account,
      payload: { url: notify.webhook_url, body: webhookBody('warning', f.account, f.at, { rule: f.rule, value: f.value, threshold: f.threshold, detail: f.detail, destinations: f.destinations }) },
    });
  }
  return out;
}
