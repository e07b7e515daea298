import * as path from 'node:path';
import { startAdminApi } from '../../../src/admin/http-api';
import { silentLogger } from '../../../src/log';
import { compileRules } from '../../../src/rules/compile';
import { loadRuleSet } from '../../../src/rules/load';
import { MemoryMonitorStore } from '../../../src/store/memory-monitor-store';

const rules = compileRules(loadRuleSet(path.join(__dirname, '../../../rules')));

async function withApi(tokenEnv: string | undefined, fn: (call: (method: string, p: string, body?: unknown, auth?: string) => Promise<Response>, store: MemoryMonitorStore, changes: () => number) => Promise<void>) {
  const store = new MemoryMonitorStore();
  let changes = 0;
  const api = startAdminApi({ config: { listen: '127.0.0.1:18071', token_env: tokenEnv }, store, rules: () => rules, changed: () => void changes++, log: silentLogger(), now: () => 1000 });
  await new Promise((r) => api.server.once('listening', r));
  const port = 18071; // this project's tests use loopback ports 18000-18499 only
  const call = (method: string, p: string, body?: unknown, auth?: string) =>
    fetch(`http://127.0.0.1:${port}${p}`, {
      method,
      headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
  try {
    await fn(call, store, () => changes);
  } finally {
    await api.close();
  }
}

describe('admin HTTP API', () => {
  it('blocks by hand, refuses the unblock until a password reset, then unblocks; each change is audited as api:<by>', async () => {
    await withApi(undefined, async (call, store, changes) => {
      expect((await call('POST', '/accounts/acme/block', { by: 'ops', reason: 'stolen phone' })).status).toBe(201);
      expect((await call('POST', '/accounts/acme/block', { by: 'ops', reason: 'again' })).status).toBe(409);
      expect((await call('POST', '/accounts/acme/unblock', { by: 'ops' })).status).toBe(409);
      expect((await call('POST', '/accounts/acme/password-reset', { by: 'portal' })).status).toBe(200);
      // A reset at the same millisecond as the block is not "after" it: the API's clock is fixed here.
      expect((await call('POST', '/accounts/acme/unblock', { by: 'ops' })).status).toBe(409);
      expect((await call('POST', '/accounts/acme/unblock', { by: 'ops', force: true, reason: 'verified by phone' })).status).toBe(200);
      expect(store.activeBlock('acme')).toBeUndefined();
      expect(store.auditTrail('acme').map((a) => `${a.action} ${a.actor}`)).toEqual(['unblock_forced api:ops', 'password_reset api:portal', 'block api:ops']);
      expect(changes()).toBe(3);
      const view = (await (await call('GET', '/accounts/acme')).json()) as { block: unknown; history: unknown[] };
      expect(view.block).toBeNull();
      expect(view.history).toHaveLength(2);
    });
  });

  it('answers 404 for unknown accounts or paths, 400 for a bad body, 405 for a wrong method', async () => {
    await withApi(undefined, async (call) => {
      expect((await call('POST', '/accounts/nobody/block', { by: 'x', reason: 'y' })).status).toBe(404);
      expect((await call('GET', '/nothing')).status).toBe(404);
      expect((await call('POST', '/accounts/acme/block', '[1,2]')).status).toBe(400);
      expect((await call('POST', '/accounts/acme/block', { reason: 'no by' })).status).toBe(400);
      expect((await call('DELETE', '/accounts/acme')).status).toBe(405);
    });
  });

  it('requires the bearer token when token_env is set', async () => {
    process.env.TOLLGUARD_TEST_TOKEN = 's3cret-token';
    try {
      await withApi('TOLLGUARD_TEST_TOKEN', async (call) => {
        expect((await call('GET', '/blocks')).status).toBe(401);
        expect((await call('GET', '/blocks', undefined, 'Bearer wrong')).status).toBe(401);
        expect((await call('GET', '/blocks', undefined, 'Bearer s3cret-token')).status).toBe(200);
      });
    } finally {
      delete process.env.TOLLGUARD_TEST_TOKEN;
    }
  });
});
