/**
 * The admin HTTP API: the same operations as the account commands, for provisioning scripts and
 * the carrier's portal (a password change there records the reset here). Loopback only
 * (guard.yaml admin_api.listen), optionally with a bearer token read from the environment.
 *
 *   GET  /blocks                              toll blocks in force
 *   GET  /accounts/ID                         block, history, password resets, recent audit
 *   POST /accounts/ID/password-reset  {by}    record a SIP password reset
 *   POST /accounts/ID/unblock  {by, force?, reason?}   lift the block (409 with the reason if refused)
 *   POST /accounts/ID/block    {by, reason}   apply a block by hand (409 if already blocked)
 *
 * Every change is audited with actor "api:<by>".
 */
import * as http from 'node:http';
import type { Logger } from 'winston';
import type { CompiledRules } from '../rules/compile';
import type { AdminApiConfig } from '../rules/monitor-schema';
import { blockNotifications } from '../monitor/messages';
import type { MonitorStore } from '../store/monitor-store';
import { blockAccount, recordPasswordReset, unblockAccount, type AdminResult } from './toll-block-admin';

export interface AdminApiOptions {
  config: AdminApiConfig;
  store: MonitorStore;
  rules: () => CompiledRules;
  /** Called after a change, so the guard applies it at once rather than at its next poll. */
  changed: () => void;
  log: Logger;
  now?: () => number;
}

const MAX_BODY = 16 * 1024;
/** A few requests a day: no keep-alive, so stop() never waits on (or leaves clients holding) idle sockets. */
const JSON_HEADERS = { 'content-type': 'application/json', connection: 'close' };

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

function readJson(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      body += c;
      if (body.length > MAX_BODY) reject(new HttpError(413, 'request body too large'));
    });
    req.on('end', () => {
      if (body.trim() === '') return resolve({});
      try {
        const v = JSON.parse(body) as unknown;
        if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
        resolve(v as Record<string, unknown>);
      } catch {
        reject(new HttpError(400, 'the body must be a JSON object'));
      }
    });
    req.on('error', reject);
  });
}

const text = (v: unknown, name: string, required: boolean): string | undefined => {
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string' || v.trim() === '') throw new HttpError(400, `"${name}" must be a non-empty string`);
  return v.trim();
};

export function startAdminApi(o: AdminApiOptions): { server: http.Server; close(): Promise<void> } {
  const now = o.now ?? Date.now;
  const token = o.config.token_env ? process.env[o.config.token_env] : undefined;
  if (o.config.token_env && !token) {
    o.log.error({ message: 'admin API: token_env is set but the environment variable is empty; every request will be refused', variable: o.config.token_env });
  }

  const handle = async (req: http.IncomingMessage): Promise<{ status: number; body: unknown }> => {
    if (o.config.token_env && (!token || req.headers.authorization !== `Bearer ${token}`)) throw new HttpError(401, 'missing or wrong bearer token');
    const url = new URL(req.url ?? '/', 'http://admin');
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    if (req.method === 'GET' && parts.length === 1 && parts[0] === 'blocks') return { status: 200, body: { blocks: o.store.activeBlocks() } };
    if (parts[0] !== 'accounts' || parts.length < 2 || parts.length > 3) throw new HttpError(404, 'no such resource');
    const account = parts[1];
    const rules = o.rules();
    if (rules.account(account) === undefined) throw new HttpError(404, `unknown account "${account}": not in accounts.yaml`);
    if (parts.length === 2) {
      if (req.method !== 'GET') throw new HttpError(405, 'use GET');
      return {
        status: 200,
        body: {
          account,
          block: o.store.activeBlock(account) ?? null,
          passwordResets: o.store.passwordResets(account),
          history: o.store.history(account),
          audit: o.store.auditTrail(account, 20),
        },
      };
    }
    if (req.method !== 'POST') throw new HttpError(405, 'use POST');
    const body = await readJson(req);
    const by = text(body.by, 'by', true)!;
    const actor = `api:${by}`;
    let r: AdminResult<unknown>;
    switch (parts[2]) {
      case 'password-reset':
        r = recordPasswordReset(o.store, account, by, actor, now());
        break;
      case 'unblock':
        r = unblockAccount(o.store, { account, by, actor, force: body.force === true, reason: text(body.reason, 'reason', false), now: now() });
        break;
      case 'block': {
        const email = rules.account(account)?.email;
        r = blockAccount(o.store, { account, reason: text(body.reason, 'reason', true)!, by, actor, now: now() }, (block) =>
          blockNotifications({ block, accountEmail: email }, rules.guard.notify),
        );
        break;
      }
      default:
        throw new HttpError(404, 'no such action: password-reset, unblock or block');
    }
    if (!r.ok) return { status: 409, body: { error: r.message } };
    o.changed();
    o.log.info({ message: 'admin API change', action: parts[2], account, by });
    return { status: parts[2] === 'block' ? 201 : 200, body: { message: r.message } };
  };

  const server = http.createServer((req, res) => {
    handle(req).then(
      ({ status, body }) => res.writeHead(status, JSON_HEADERS).end(JSON.stringify(body)),
      (err: unknown) => {
        const status = err instanceof HttpError ? err.status : 500;
        const message = err instanceof Error ? err.message : String(err);
        if (status === 500) o.log.error({ message: 'admin API request failed', method: req.method, url: req.url, error: err instanceof Error ? err.stack : message });
        res.writeHead(status, JSON_HEADERS).end(JSON.stringify({ error: message }));
      },
    );
  });
  const sep = o.config.listen.lastIndexOf(':');
  const host = o.config.listen.slice(0, sep).replace(/^\[|\]$/g, '');
  const port = Number(o.config.listen.slice(sep + 1));
  server.on('error', (err) => o.log.error({ message: 'admin API could not listen', listen: o.config.listen, error: err.message }));
  server.listen(port, host, () => o.log.info({ message: 'admin API listening', listen: o.config.listen }));
  return {
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
