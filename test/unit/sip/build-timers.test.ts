import { responseTemplate, buildResponse } from '../../../src/sip/build';
import { parseMessage, type SipRequest } from '../../../src/sip/message';
import { ExpiryQueue, Timers } from '../../../src/sip/transaction';

const request = (lines: string[]): SipRequest => parseMessage(Buffer.from([...lines, 'Content-Length: 0', '', ''].join('\r\n'), 'latin1')) as SipRequest;

describe('responseTemplate (RFC 3261 §8.2.6.2)', () => {
  it('copies all Via lines, then From, Call-ID and CSeq, and the To value', () => {
    const req = request([
      'BYE sip:b@h SIP/2.0',
      'Call-ID: c1',
      'Via: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2',
      'To: <sip:b@h>;tag=t2',
      'v: SIP/2.0/TCP c;branch=z9hG4bK3',
      'From: <sip:a@h>;tag=t1',
      'CSeq: 2 BYE',
      'To: <sip:other@h>',
    ]);
    req.replaceFirstValue('via', 'SIP/2.0/UDP a;branch=z9hG4bK1;received=10.0.0.1');
    const tpl = responseTemplate(req);
    expect(tpl.head).toBe(
      [
        'Via: SIP/2.0/UDP a;branch=z9hG4bK1;received=10.0.0.1, SIP/2.0/UDP b;branch=z9hG4bK2',
        'v: SIP/2.0/TCP c;branch=z9hG4bK3',
        'From: <sip:a@h>;tag=t1',
        'Call-ID: c1',
        'CSeq: 2 BYE',
      ].join('\r\n'),
    );
    expect(tpl.to).toBe('<sip:b@h>;tag=t2');
    expect(tpl.toHasTag).toBe(true);
    expect(buildResponse(tpl, 200, 'OK').toString('latin1')).toBe(`SIP/2.0 200 OK\r\n${tpl.head}\r\nTo: <sip:b@h>;tag=t2\r\nContent-Length: 0\r\n\r\n`);
  });
});

describe('Timers', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('refresh() restarts a running timer with its duration and callback', () => {
    const t = new Timers();
    const fn = jest.fn();
    expect(t.refresh('C')).toBe(false);
    t.set('C', 100, fn);
    jest.advanceTimersByTime(60);
    expect(t.refresh('C')).toBe(true);
    jest.advanceTimersByTime(60);
    expect(fn).not.toHaveBeenCalled();
    jest.advanceTimersByTime(40);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(t.size).toBe(0);
    expect(t.refresh('C')).toBe(false);
  });

  it('set, replace, clear and clearAll keep the named timers apart, also past four at once', () => {
    const t = new Timers();
    const fired: string[] = [];
    for (const n of ['A', 'B', 'C', 'D', 'E', 'F']) t.set(n, 10, () => fired.push(n));
    expect(t.size).toBe(6);
    t.set('B', 30, () => fired.push('B2')); // replaces B
    t.clear('D');
    expect(t.has('D')).toBe(false);
    expect(t.size).toBe(5);
    jest.advanceTimersByTime(10);
    expect(fired.sort()).toEqual(['A', 'C', 'E', 'F']);
    expect(t.size).toBe(1);
    expect(t.has('B')).toBe(true);
    jest.advanceTimersByTime(20);
    expect(fired).toContain('B2');
    expect(fired).not.toContain('B');
    expect(t.size).toBe(0);
    t.set('G', 5, () => fired.push('G'));
    t.set('H', 5, () => fired.push('H'));
    t.clearAll();
    expect(t.size).toBe(0);
    jest.advanceTimersByTime(10);
    expect(fired).not.toContain('G');
    expect(fired).not.toContain('H');
    t.set('I', 5, () => fired.push('I'));
    jest.advanceTimersByTime(5);
    expect(fired).toContain('I');
  });
});

describe('ExpiryQueue (Timers D, I, J, K, L, M)', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  const target = (id: string): { id: string; timers: Timers } => ({ id, timers: new Timers() });

  it('ends each target its duration after it was added, in order, and skips those whose timers were cleared', () => {
    const ended: string[] = [];
    const q = new ExpiryQueue<{ id: string; timers: Timers }>(100, (t) => ended.push(t.id));
    const a = target('a');
    const b = target('b');
    const c = target('c');
    q.add(a);
    jest.advanceTimersByTime(40);
    q.add(b);
    q.add(c);
    c.timers.clearAll(); // as terminate or a new state would
    jest.advanceTimersByTime(58);
    expect(ended).toEqual([]);
    jest.advanceTimersByTime(2);
    expect(ended).toEqual(['a']);
    jest.advanceTimersByTime(38);
    expect(ended).toEqual(['a']);
    jest.advanceTimersByTime(2);
    expect(ended).toEqual(['a', 'b']);
    expect(q.size).toBe(0);
    q.add(c); // re-added after the clear: fires again
    jest.advanceTimersByTime(100);
    expect(ended).toEqual(['a', 'b', 'c']);
  });

  it('clear() drops everything and leaves no timer running', () => {
    const ended: string[] = [];
    const q = new ExpiryQueue<{ id: string; timers: Timers }>(10, (t) => ended.push(t.id));
    for (let i = 0; i < 3000; i++) q.add(target(String(i)));
    jest.advanceTimersByTime(10);
    expect(ended.length).toBe(3000);
    q.add(target('x'));
    q.clear();
    expect(jest.getTimerCount()).toBe(0);
    jest.advanceTimersByTime(100);
    expect(ended).not.toContain('x');
  });
});
