import { responseTemplate, buildResponse } from '../../../src/sip/build';
import { parseMessage, type SipRequest } from '../../../src/sip/message';
import { TimerService, type TimerOwner } from '../../../src/sip/timer-service';

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
    expect(buildResponse(tpl, 200, 'OK')).toBe(`SIP/2.0 200 OK\r\n${tpl.head}\r\nTo: <sip:b@h>;tag=t2\r\nContent-Length: 0\r\n\r\n`);
  });
});

describe('TimerService (RFC 3261 §17 timers)', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  interface Owner extends TimerOwner {
    id: string;
  }
  const owner = (id: string): Owner => ({ id, timerEntries: null });
  const service = (): { timers: TimerService<Owner>; fired: string[] } => {
    const fired: string[] = [];
    return { timers: new TimerService<Owner>((o, name) => fired.push(`${o.id}:${name}`)), fired };
  };

  it('refresh() restarts a running timer with its own duration', () => {
    const { timers, fired } = service();
    const o = owner('o');
    expect(timers.refresh(o, 'C')).toBe(false);
    timers.set(o, 'C', 100);
    jest.advanceTimersByTime(60);
    expect(timers.refresh(o, 'C')).toBe(true);
    jest.advanceTimersByTime(60);
    expect(fired).toEqual([]);
    jest.advanceTimersByTime(40);
    expect(fired).toEqual(['o:C']);
    expect(timers.size).toBe(0);
    expect(timers.refresh(o, 'C')).toBe(false);
  });

  it('set, replace, clear and clearAll keep the named timers of each owner apart', () => {
    const { timers, fired } = service();
    const o = owner('o');
    const p = owner('p');
    for (const n of ['A', 'B', 'C', 'G', 'H', 'admit'] as const) timers.set(o, n, 10);
    timers.set(p, 'A', 10);
    expect(timers.size).toBe(7);
    timers.set(o, 'B', 30); // replaces B
    timers.clear(o, 'G');
    expect(timers.has(o, 'G')).toBe(false);
    expect(timers.has(p, 'A')).toBe(true);
    expect(timers.size).toBe(6);
    jest.advanceTimersByTime(10);
    expect(fired.sort()).toEqual(['o:A', 'o:C', 'o:H', 'o:admit', 'p:A']);
    expect(timers.size).toBe(1);
    expect(timers.has(o, 'B')).toBe(true);
    jest.advanceTimersByTime(20);
    expect(fired.filter((f) => f === 'o:B')).toEqual(['o:B']);
    expect(timers.size).toBe(0);
    timers.set(o, 'G', 5);
    timers.set(o, 'H', 5);
    timers.clearAll(o);
    expect(timers.size).toBe(0);
    jest.advanceTimersByTime(10);
    expect(fired).not.toContain('o:G');
    timers.set(o, 'end', 5); // entries are reused after firing or clearing
    jest.advanceTimersByTime(5);
    expect(fired).toContain('o:end');
    expect(o.timerEntries!.length).toBe(7);
  });

  it('entries of one duration fire in the order they were set, each its duration after it was set', () => {
    const { timers, fired } = service();
    const [a, b, c] = [owner('a'), owner('b'), owner('c')];
    timers.set(a, 'end', 100);
    jest.advanceTimersByTime(40);
    timers.set(b, 'end', 100);
    timers.set(c, 'end', 100);
    timers.clearAll(c); // as terminate or a new state would
    jest.advanceTimersByTime(58);
    expect(fired).toEqual([]);
    jest.advanceTimersByTime(2);
    expect(fired).toEqual(['a:end']);
    jest.advanceTimersByTime(38);
    expect(fired).toEqual(['a:end']);
    jest.advanceTimersByTime(2);
    expect(fired).toEqual(['a:end', 'b:end']);
    timers.set(c, 'end', 100); // set again after the clear: fires again
    jest.advanceTimersByTime(100);
    expect(fired).toEqual(['a:end', 'b:end', 'c:end']);
  });

  it('a timer set from a firing one runs too, and one Node timer a duration serves them all', () => {
    const fired: string[] = [];
    const timers: TimerService<Owner> = new TimerService<Owner>((o, name) => {
      fired.push(`${o.id}:${name}`);
      if (name === 'A' && fired.length < 4) timers.set(o, 'A', 10); // a retransmission timer re-arming itself
    });
    for (let i = 0; i < 3000; i++) timers.set(owner(String(i)), 'B', 50);
    timers.set(owner('x'), 'A', 10);
    expect(jest.getTimerCount()).toBe(2);
    jest.advanceTimersByTime(30);
    expect(fired).toEqual(['x:A', 'x:A', 'x:A']);
    jest.advanceTimersByTime(20);
    expect(fired.length).toBe(3004);
  });

  it('stop() drops everything and leaves no timer running', () => {
    const { timers, fired } = service();
    for (let i = 0; i < 10; i++) timers.set(owner(String(i)), 'H', 10);
    timers.stop();
    expect(jest.getTimerCount()).toBe(0);
    jest.advanceTimersByTime(100);
    expect(fired).toEqual([]);
    expect(timers.size).toBe(0);
  });
});
