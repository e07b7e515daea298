import { CallLedger } from '../../../src/core/call-ledger';

const T0 = 1_700_000_000_000;

describe('CallLedger', () => {
  it('counts slots per account and gives them back on release', () => {
    const l = new CallLedger();
    const c1 = l.take('acme', T0);
    l.take('acme', T0);
    l.take('other', T0);
    expect(l.count('acme')).toBe(2);
    expect(l.count('other')).toBe(1);
    expect(l.has(c1)).toBe(true);
    l.release(c1);
    expect(l.count('acme')).toBe(1);
    expect(l.has(c1)).toBe(false);
    expect(l.size).toBe(2);
  });

  it('release is idempotent and ignores handles it never gave out', () => {
    const l = new CallLedger();
    const c1 = l.take('acme', T0);
    l.release(c1);
    l.release(c1);
    for (const junk of [-1, 12345, 2 ** 40 + 3, NaN, 0.5]) l.release(junk);
    expect(l.count('acme')).toBe(0);
    expect(l.size).toBe(0);
  });

  it('a stale handle does not touch the call its slot went to next', () => {
    const l = new CallLedger();
    const old = l.take('acme', T0);
    l.release(old);
    const reused = l.take('other', T0);
    expect(reused).not.toBe(old);
    expect(l.has(old)).toBe(false);
    l.release(old);
    l.touch(old, T0 + 1);
    expect(l.has(reused)).toBe(true);
    expect(l.count('other')).toBe(1);
  });

  it('the backstop frees a slot after max_call_seconds of call time', () => {
    const l = new CallLedger({ maxCallSeconds: 60 });
    const lostBye = l.take('acme', T0);
    l.advance(T0 + 60_000);
    expect(l.count('acme')).toBe(1);
    l.advance(T0 + 61_001);
    expect(l.count('acme')).toBe(0);
    expect(l.has(lostBye)).toBe(false);
    expect(l.size).toBe(0);
  });

  it('touch() restarts the backstop timer and moves the slot behind younger ones', () => {
    const l = new CallLedger({ maxCallSeconds: 60 });
    const long = l.take('acme', T0);
    const short = l.take('acme', T0 + 10_000);
    l.touch(long, T0 + 50_000);
    l.advance(T0 + 100_000);
    expect(l.has(long)).toBe(true);
    expect(l.has(short)).toBe(false);
    expect(l.count('acme')).toBe(1);
    l.advance(T0 + 111_001);
    expect(l.count('acme')).toBe(0);
  });

  it('touch() does not resurrect an expired slot', () => {
    const l = new CallLedger({ maxCallSeconds: 10 });
    const c = l.take('acme', T0);
    l.touch(c, T0 + 10_500);
    expect(l.has(c)).toBe(false);
    expect(l.count('acme')).toBe(0);
  });

  it('eviction at maxLiveCalls gives the least recently touched slot back', () => {
    const l = new CallLedger({ maxLiveCalls: 2 });
    const c1 = l.take('a', T0);
    const c2 = l.take('a', T0);
    l.touch(c1, T0 + 1);
    l.take('b', T0 + 2);
    expect(l.size).toBe(2);
    expect(l.count('a')).toBe(1);
    expect(l.count('b')).toBe(1);
    expect(l.has(c2)).toBe(false);
    expect(l.has(c1)).toBe(true);
  });

  it('with a long max_call_seconds the sweep runs less often but has() sees expiry at once', () => {
    const l = new CallLedger(); // 14 400 s: sweeps every 60 s of call time
    const c = l.take('acme', T0);
    l.advance(T0 + 14_400_001);
    expect(l.has(c)).toBe(false);
    l.take('acme', T0 + 14_400_002);
    l.advance(T0 + 14_400_000 + 60_001);
    expect(l.count('acme')).toBe(1);
    expect(l.size).toBe(1);
  });

  it('grows past its first arrays and keeps every slot apart', () => {
    const l = new CallLedger();
    const handles = Array.from({ length: 5000 }, (_, i) => l.take(`acct${i % 7}`, T0 + i));
    expect(new Set(handles).size).toBe(5000);
    for (let i = 0; i < 5000; i += 2) l.release(handles[i]);
    expect(l.size).toBe(2500);
    for (let i = 0; i < 5000; i++) expect(l.has(handles[i])).toBe(i % 2 === 1);
    const total = Array.from({ length: 7 }, (_, k) => l.count(`acct${k}`)).reduce((a, b) => a + b, 0);
    expect(total).toBe(2500);
  });

  it('a held LiveCounter counts the same slots as the account id', () => {
    const l = new CallLedger();
    const c = l.counter('acme');
    expect(l.counter('acme')).toBe(c);
    const c1 = l.take(c, T0);
    l.take('acme', T0);
    expect(c.live).toBe(2);
    expect(l.count('acme')).toBe(2);
    l.release(c1);
    expect(c.live).toBe(1);
  });

  it('drops idle counters after a minute and takes through a detached one safely', () => {
    const l = new CallLedger();
    const c = l.counter('acme');
    l.release(l.take(c, T0));
    l.advance(T0 + 60_001);
    expect(c.detached).toBe(true);
    l.take(c, T0 + 60_002);
    expect(l.count('acme')).toBe(1);
    expect(l.counter('acme')).not.toBe(c);
  });

  it('keeps counters that still have live calls', () => {
    const l = new CallLedger();
    const c = l.counter('acme');
    l.take(c, T0);
    l.advance(T0 + 120_000);
    expect(c.detached).toBe(false);
    expect(l.count('acme')).toBe(1);
  });
});
