import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { GuardCore } from '../../../src/core/guard-core';
import { silentLogger } from '../../../src/log';
import { RuleStore } from '../../../src/rules/rule-store';
import { GuardPolicy } from '../../../src/sip/guard-policy';
import { parseMessage, type SipRequest } from '../../../src/sip/message';
import { startDefense } from '../../../src/defense/start';
import { makeRulesDir, SHIPPED } from '../rules/helpers';

function options(ua: string): SipRequest {
  const text = ['OPTIONS sip:100@127.0.0.1 SIP/2.0', 'Via: SIP/2.0/UDP 127.0.0.9:5061;branch=z9hG4bKx', 'Max-Forwards: 70', 'From: <sip:100@1.1.1.1>;tag=1', 'To: <sip:100@1.1.1.1>', 'Call-ID: x', 'CSeq: 1 OPTIONS', `User-Agent: ${ua}`, 'Content-Length: 0', '', ''].join('\r\n');
  return parseMessage(Buffer.from(text)) as SipRequest;
}

function setup(withDefense: boolean) {
  const dir = makeRulesDir();
  if (withDefense) {
    for (const f of ['defense.yaml', 'scanner-fingerprints.yaml', 'blocklist.txt']) fs.copyFileSync(path.join(SHIPPED, f), path.join(dir, f));
  }
  const rules = RuleStore.open(dir);
  const policy = new GuardPolicy(new GuardCore(rules.current), silentLogger(), 'none');
  return { rules, policy };
}

describe('startDefense', () => {
  it('plugs into the policy: a scanner is dropped, then its address is dropped before parsing, and the ban is in the file', () => {
    const { rules, policy } = setup(true);
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'defense-')), 'state.db');
    const h = startDefense({ frontEnd: policy, rules, logger: silentLogger(), stateFile: file });
    const peer = { transport: 'udp' as const, address: '127.0.0.9', port: 5061 };
    expect(policy.screenRequest(options('friendly-scanner'), peer)).toBe('drop');
    expect(policy.dropSource('127.0.0.9', 'udp')).toBe(true);
    expect(policy.dropSource('127.0.0.8', 'udp')).toBe(false);
    h.stop();
    const again = startDefense({ frontEnd: setup(true).policy, rules, logger: silentLogger(), stateFile: file });
    expect(again.defense.isBanned('127.0.0.9')).toBe(true);
    again.stop();
  });

  it('refuses to run the defense on a store it cannot open, but a guard without defense.yaml still starts', () => {
    // A path under a regular file: its directory can never be created.
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'defense-')), 'not-a-dir');
    fs.writeFileSync(file, '');
    const bad = path.join(file, 'state.db');
    const on = setup(true);
    expect(() => startDefense({ frontEnd: on.policy, rules: on.rules, logger: silentLogger(), stateFile: bad })).toThrow(/cannot open the ban store .*not-a-dir\/state\.db/);
    const off = setup(false);
    const h = startDefense({ frontEnd: off.policy, rules: off.rules, logger: silentLogger(), stateFile: bad });
    expect(h.defense.enabled).toBe(false);
    h.stop();
  });
});
