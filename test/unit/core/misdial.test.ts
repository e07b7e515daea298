import { DialPlan } from '../../../src/core/dial-plan';

const possibleMisdial = (dialled: string, country: string) => DialPlan.for(country).misdialOf(dialled);
import { GuardCore } from '../../../src/core/guard-core';
import { compileRules } from '../../../src/rules/compile';
import { loadRuleSet } from '../../../src/rules/load';
import * as path from 'node:path';

describe('DialPlan.misdialOf (possible misdial)', () => {
  it('reads 00 typed for 0 in NZ: 00252612345 could be the NZ number 0252612345', () => {
    expect(possibleMisdial('00252612345', 'NZ')).toBe('0252612345');
  });

  it('is not a misdial when the digits make no valid domestic number', () => {
    expect(possibleMisdial('0025261234567', 'NZ')).toBeUndefined(); // a full Somali number
    expect(possibleMisdial('0018765550123', 'NZ')).toBeUndefined();
  });

  it('needs the international prefix as dialled; a + number was meant as international', () => {
    expect(possibleMisdial('+252612345', 'NZ')).toBeUndefined();
    expect(possibleMisdial('252612345', 'NZ')).toBeUndefined();
  });

  it('reads separators like the dial plan does, and refuses letters', () => {
    expect(possibleMisdial('00 252 612 345', 'NZ')).toBe('0252612345');
    expect(possibleMisdial('00252abc345', 'NZ')).toBeUndefined();
  });

  it('uses each country\'s own prefixes: 011 and no national prefix in the US, 0011 and 0 in AU', () => {
    expect(possibleMisdial('011252612345', 'US')).toBeUndefined(); // NANP has no national prefix to mistake
    expect(possibleMisdial('0011212345678', 'AU')).toBe('0212345678');
  });
});

describe('the core refusing a possible misdial', () => {
  const rules = compileRules(loadRuleSet(path.join(__dirname, '../../../rules')));
  const core = new GuardCore(rules);
  const attempt = (dialled: string) => ({ source: '127.0.0.10', dialled, callId: dialled, now: 1 });

  it('still refuses it as high-risk, and says "possible misdial" with the number probably meant', () => {
    const v = core.decide(attempt('00252612345'));
    expect(v).toMatchObject({ allow: false, rule: 'high_risk', status: 403, misdial: '0252612345' });
    expect(v.detail).toBe('possible misdial of 0252612345: high-risk destination +252 Somalia');
  });

  it('leaves other high-risk refusals as they were', () => {
    const v = core.decide(attempt('0025261234567'));
    expect(v.detail).toBe('high-risk destination +252 Somalia');
    expect(v.misdial).toBeUndefined();
  });
});
