import type { CallControl, HangUpFilter, LiveCall } from './call-events';
import type { GuardPolicy } from './guard-policy';
import type { SipProxy } from './proxy';

/**
 * CallControl for the embedded proxy: the policy knows which calls it admitted (account,
 * destination), the proxy knows their dialogs and ends them with a BYE to each side.
 */
export class EmbeddedCallControl implements CallControl {
  constructor(
    private readonly policy: GuardPolicy,
    private readonly proxy: SipProxy,
  ) {}

  liveCalls(accountId?: string): LiveCall[] {
    const out: LiveCall[] = [];
    for (const c of this.policy.live.values()) {
      if (accountId !== undefined && c.account !== accountId) continue;
      const { slot: _slot, ...call } = c;
      out.push(call);
    }
    return out;
  }

  hangUpCalls(accountId: string, filter: HangUpFilter = {}, reason?: string): Promise<number> {
    const only = filter.callIds ? new Set(filter.callIds) : undefined;
    let ended = 0;
    for (const c of this.liveCalls(accountId)) {
      if (filter.international !== undefined && c.international !== filter.international) continue;
      if (only && !only.has(c.callId)) continue;
      if (this.proxy.hangUp(c.callId, reason)) ended++;
    }
    return Promise.resolve(ended);
  }
}
