/**
 * Delivers the notification outbox: emails over SMTP (nodemailer) and webhook POSTs. A message
 * stays in the store until it is delivered; failures are logged and retried with backoff, and
 * after notify.max_attempts it is marked given up (still in the store, shown by `tollguard
 * status`, logged as an error), so nothing is lost silently. Runs in the guard only; the CLI
 * queues (for a block by hand) and the guard delivers.
 */
import nodemailer, { type Transporter } from 'nodemailer';
import type { Logger } from 'winston';
import type { NotifyConfig } from '../rules/monitor-schema';
import type { EmailPayload, MonitorStore, OutboxMessage, WebhookPayload } from '../store/monitor-store';

/** Seconds before attempt 2, 3, ...; the last value repeats. */
const BACKOFF_S = [5, 15, 60, 300, 900, 3600];
const DEFAULT_MAX_ATTEMPTS = 12;
const WEBHOOK_TIMEOUT_MS = 5000;

export type SendMail = (msg: EmailPayload, notify: NotifyConfig) => Promise<void>;
export type PostJson = (hook: WebhookPayload) => Promise<void>;

export function smtpSender(): SendMail {
  let cached: { key: string; transport: Transporter } | undefined;
  return async (msg, notify) => {
    const smtp = notify.smtp;
    if (!smtp || !notify.from) throw new Error('notify.smtp and notify.from must be set in guard.yaml to send email');
    const key = JSON.stringify(smtp);
    if (cached?.key !== key) {
      cached?.transport.close();
      const password = smtp.password_env ? process.env[smtp.password_env] : undefined;
      cached = {
        key,
        transport: nodemailer.createTransport({
          host: smtp.host,
          port: smtp.port ?? (smtp.secure ? 465 : 25),
          secure: smtp.secure ?? false,
          auth: smtp.user ? { user: smtp.user, pass: password ?? '' } : undefined,
          connectionTimeout: 10_000,
          greetingTimeout: 10_000,
          socketTimeout: 20_000,
        }),
      };
    }
    await cached.transport.sendMail({ from: notify.from, to: msg.to, cc: msg.cc.length > 0 ? msg.cc : undefined, subject: msg.subject, text: msg.text });
  };
}

export const httpPoster: PostJson = async (hook) => {
  const res = await fetch(hook.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(hook.body),
    signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
  });
  if (!res.ok) throw new Error(`webhook answered HTTP ${res.status}`);
};

export class OutboxSender {
  private running: Promise<void> | null = null;
  private again = false;

  constructor(
    private readonly store: MonitorStore,
    private readonly notify: () => NotifyConfig | undefined,
    private readonly log: Logger,
    private readonly sendMail: SendMail = smtpSender(),
    private readonly post: PostJson = httpPoster,
    private readonly now: () => number = Date.now,
  ) {}

  /** Resolves when no delivery pass is running. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Delivers everything due; concurrent calls coalesce into one more pass. */
  flush(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      // Yield first: were the pass to finish synchronously, its finally would clear `running`
      // before the assignment below stored the settled promise for good.
      await null;
      try {
        do {
          this.again = false;
          for (const m of this.store.dueOutbox(this.now(), 20)) await this.deliver(m);
        } while (this.again);
      } finally {
        this.running = null;
      }
    })();
    return this.running;
  }

  private async deliver(m: OutboxMessage): Promise<void> {
    const notify = this.notify() ?? {};
    const target = m.kind === 'email' ? [...m.payload.to, ...m.payload.cc].join(',') : m.payload.url;
    try {
      if (m.kind === 'email') await this.sendMail(m.payload, notify);
      else await this.post(m.payload);
      this.store.markSent(m.id, this.now());
      this.log.info({ message: 'notification sent', kind: m.kind, id: m.id, account: m.account, to: target, attempt: m.attempts + 1 });
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      const attempt = m.attempts + 1;
      const max = notify.max_attempts ?? DEFAULT_MAX_ATTEMPTS;
      const giveUp = attempt >= max;
      const next = this.now() + BACKOFF_S[Math.min(attempt - 1, BACKOFF_S.length - 1)] * 1000;
      this.store.markFailed(m.id, error, next, giveUp);
      const entry = { kind: m.kind, id: m.id, account: m.account, to: target, attempt, error };
      if (giveUp) this.log.error({ message: 'notification given up', maxAttempts: max, ...entry });
      else this.log.warn({ message: 'notification failed; will retry', retryAt: new Date(next).toISOString(), ...entry });
    }
  }
}
