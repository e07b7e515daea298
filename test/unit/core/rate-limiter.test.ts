import { KeyedRateLimiter, RATE_MINUTE, RATE_OK, RATE_SECOND, RateWindow, checkRate, commitAdmit } from '../../../src/core/rate-limiter';

const T0 = 1_700_000_000_000;

describe('KeyedRateLimiter and RateWindow', () => {
  it('cps 5 and 20 calls in one instant: exactly 15 rejected', () => {
    const rl = new KeyedRateLimiter();
    const results = Array.from({ length: 20 }, () => rl.admit('a', 5, Infinity, T0));
    expect(results.filter((r) => r === RATE_OK)).toHaveLength(5);
    expect(results.filter((r) => r === RATE_SECOND)).toHaveLength(15);
  });

  it('the second window is (t-1000, t]: a call exactly 1000 ms later is admitted, 999 ms is not', () => {
    const rl = new KeyedRateLimiter();
    expect(rl.admit('a', 1, Infinity, T0)).toBe(RATE_OK);
    expect(rl.admit('a', 1, Infinity, T0 + 999)).toBe(RATE_SECOND);
    expect(rl.admit('a', 1, Infinity, T0 + 1000)).toBe(RATE_OK);
  });

  it('slides the minute window call by call', () => {
    const rl = new KeyedRateLimiter();
    // 3 a minute, admitted at 0 s, 20 s, 40 s.
    for (const s of [0, 20, 40]) expect(rl.admit('a', Infinity, 3, T0 + s * 1000)).toBe(RATE_OK);
    expect(rl.admit('a', Infinity, 3, T0 + 59_999)).toBe(RATE_MINUTE);
    expect(rl.admit('a', Infinity, 3, T0 + 60_000)).toBe(RATE_OK); // the 0 s admit just left
    expect(rl.admit('a', Infinity, 3, T0 + 70_000)).toBe(RATE_MINUTE); // 20 s, 40 s, 60 s still in
    expect(rl.admit('a', Infinity, 3, T0 + 80_000)).toBe(RATE_OK);
  });

  it('counts only admitted calls: rejections do not extend the window', () => {
    const rl = new KeyedRateLimiter();
    expect(rl.admit('a', 2, Infinity, T0)).toBe(RATE_OK);
    expect(rl.admit('a', 2, Infinity, T0 + 500)).toBe(RATE_OK);
    for (let t = 600; t < 1000; t += 50) expect(rl.admit('a', 2, Infinity, T0 + t)).toBe(RATE_SECOND);
    expect(rl.admit('a', 2, Infinity, T0 + 1000)).toBe(RATE_OK);
  });

  it('checkRate() without commitAdmit() consumes nothing', () => {
    const rl = new KeyedRateLimiter();
    const w = rl.window('a', T0);
    for (let i = 0; i < 10; i++) expect(checkRate(w, 1, Infinity, T0)).toBe(RATE_OK);
    commitAdmit(w, 1, Infinity, T0);
    expect(checkRate(w, 1, Infinity, T0)).toBe(RATE_SECOND);
    expect(rl.admit('a', 1, Infinity, T0)).toBe(RATE_SECOND);
  });

  it('a window is idle once its newest admit is a minute old, and stays exact while held', () => {
    const w = new RateWindow();
    expect(w.isIdle(T0)).toBe(true);
    // One admit every 5 s for 3 minutes, 12 a minute allowed: all admitted.
    for (let t = 0; t < 180_000; t += 5000) {
      expect(checkRate(w, Infinity, 12, T0 + t)).toBe(RATE_OK);
      commitAdmit(w, Infinity, 12, T0 + t);
    }
    // 125 s .. 175 s are in (120 s, 180 s]: 11 admits, so one more fits, then the window is full.
    expect(checkRate(w, Infinity, 12, T0 + 180_000)).toBe(RATE_OK);
    commitAdmit(w, Infinity, 12, T0 + 180_000);
    expect(checkRate(w, Infinity, 12, T0 + 180_001)).toBe(RATE_MINUTE);
    expect(w.isIdle(T0 + 239_999)).toBe(false);
    expect(w.isIdle(T0 + 240_000)).toBe(true);
  });

  it('applies both windows together and names the one that bit', () => {
    const rl = new KeyedRateLimiter();
    let admitted = 0;
    let perSecondRejects = 0;
    let perMinuteRejects = 0;
    // 10 attempts a second for 10 seconds against 2/s and 10/min.
    for (let s = 0; s < 10; s++) {
      for (let k = 0; k < 10; k++) {
        const r = rl.admit('a', 2, 10, T0 + s * 1000 + k);
        if (r === RATE_OK) admitted++;
        else if (r === RATE_SECOND) perSecondRejects++;
        else perMinuteRejects++;
      }
    }
    expect(admitted).toBe(10);
    expect(perSecondRejects).toBe(5 * 8);
    expect(perMinuteRejects).toBe(5 * 10);
  });

  it('is exact for a large limit at a steady rate (ring growth)', () => {
    const rl = new KeyedRateLimiter();
    // 100 a minute, one attempt every 300 ms for 3 minutes: every 60 s window holds <= 100 admits.
    const admits: number[] = [];
    for (let t = 0; t < 180_000; t += 300) if (rl.admit('a', Infinity, 100, T0 + t) === RATE_OK) admits.push(t);
    for (const t of admits) {
      const inWindow = admits.filter((u) => u > t - 60_000 && u <= t).length;
      expect(inWindow).toBeLessThanOrEqual(100);
    }
    // Attempts every 300 ms is 200 a minute, so exactly 100 per minute get through once saturated.
    expect(admits.filter((t) => t >= 60_000 && t < 120_000)).toHaveLength(100);
  });

  it('keys are independent, unlimited needs no state, zero blocks everything', () => {
    const rl = new KeyedRateLimiter();
    expect(rl.admit('a', 1, Infinity, T0)).toBe(RATE_OK);
    expect(rl.admit('b', 1, Infinity, T0)).toBe(RATE_OK);
    expect(rl.admit('a', 1, Infinity, T0)).toBe(RATE_SECOND);
    expect(rl.admit('c', Infinity, Infinity, T0)).toBe(RATE_OK);
    expect(rl.size).toBe(2);
    expect(rl.admit('d', 0, Infinity, T0)).toBe(RATE_SECOND);
    expect(rl.admit('e', Infinity, 0, T0)).toBe(RATE_MINUTE);
  });

  it('forgets idle keys after a minute of call time, without changing any answer', () => {
    const rl = new KeyedRateLimiter();
    expect(rl.admit('idle', 1, 1, T0)).toBe(RATE_OK);
    rl.admit('busy', 1, 1, T0 + 30_000);
    expect(rl.size).toBe(2);
    rl.admit('busy2', 1, 1, T0 + 125_000);
    expect(rl.size).toBe(1);
    expect(rl.admit('idle', 1, 1, T0 + 125_001)).toBe(RATE_OK);
  });

  it('agrees with a naive recount on every attempt of a long random stream (bursts, gaps, fractions of ms)', () => {
    let seed = 7;
    const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (const [perSecond, perMinute] of [[5, 60], [20, 600], [1, 3], [Infinity, 10], [3, Infinity]] as const) {
      const w = new RateWindow();
      const admits: number[] = [];
      let t = T0 + 123.4;
      for (let i = 0; i < 20_000; i++) {
        const r = rand();
        t += r < 0.6 ? rand() * 20 : r < 0.95 ? rand() * 900 : rand() * 130_000;
        const inSecond = admits.filter((a) => a > t - 1000).length;
        const inMinute = admits.filter((a) => a > t - 60_000).length;
        const expected = inSecond >= perSecond ? RATE_SECOND : inMinute >= perMinute ? RATE_MINUTE : RATE_OK;
        const got = checkRate(w, perSecond, perMinute, t);
        expect(got).toBe(expected);
        if (got === RATE_OK) {
          commitAdmit(w, perSecond, perMinute, t);
          admits.push(t);
          while (admits.length > 0 && admits[0] <= t - 60_000) admits.shift();
        }
      }
    }
  });

  it('works with a clock that starts at 0', () => {
    const rl = new KeyedRateLimiter();
    expect(rl.admit('a', 1, Infinity, 0)).toBe(RATE_OK);
    expect(rl.admit('a', 1, Infinity, 999)).toBe(RATE_SECOND);
    expect(rl.admit('a', 1, Infinity, 1000)).toBe(RATE_OK);
  });
});
