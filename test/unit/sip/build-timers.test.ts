import { responseTemplate, buildResponse } from '../../../src/sip/build';
import { parseMessage, type SipRequest } from '../../../src/sip/message';
import { TimerService, TimerSlot } from '../../../src/sip/timer-service';

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

  /** An owner with the two slots a transaction has. */
  class Owner {
    readonly rt = new TimerSlot<Owner>(this);
    readonly dl = new TimerSlot<Owner>(this);
    constructor(readonly id: string) {}
  }
  const service = (): { timers: TimerService<Owner>; fired: string[] } => {
    const fired: string[] = [];
    return { timers: new TimerService<Owner>((o, name) => fired.push(`${o.id}:${name}`)), fired };
  };

  it('arming a slot again restarts it with the new name and duration', () => {
    const { timers, fired } = service();
    const o = new Owner('o');
    timers.set(o.dl, 'B', 100);
    jest.advanceTimersByTime(60);
    timers.set(o.dl, 'C', 100); // a provisional: Timer C replaces B
    jest.advanceTimersByTime(60);
    expect(fired).toEqual([]);
    expect(timers.has(o.dl, 'C')).toBe(true);
    expect(timers.has(o.dl, 'B')).toBe(false);
    jest.advanceTimersByTime(40);
    expect(fired).toEqual(['o:C']);
    expect(timers.size).toBe(0);
    expect(o.dl.armed).toBe(false);
  });

  it('clear() by name leaves a slot armed as something else; the two slots and the owners are apart', () => {
    const { timers, fired } = service();
    const o = new Owner('o');
    const p = new Owner('p');
    timers.set(o.rt, 'A', 10);
    timers.set(o.dl, 'B', 10);
    timers.set(p.rt, 'A', 10);
    timers.clear(o.dl, 'C'); // not armed as C: stays
    expect(timers.size).toBe(3);
    timers.clear(o.rt, 'A');
    expect(timers.size).toBe(2);
    jest.advanceTimersByTime(10);
    expect(fired.sort()).toEqual(['o:B', 'p:A']);
    timers.set(o.dl, 'end', 5); // slots are reused after firing or clearing
    timers.set(o.rt, 'A', 5);
    timers.clear(o.rt);
    timers.clear(o.dl);
    jest.advanceTimersByTime(10);
    expect(fired.sort()).toEqual(['o:B', 'p:A']);
    timers.set(o.dl, 'end', 5);
    jest.advanceTimersByTime(5);
    expect(fired).toContain('o:end');
  });

  it('slots of one duration fire in the order they were armed, each its duration after it was armed', () => {
    const { timers, fired } = service();
    const [a, b, c] = [new Owner('a'), new Owner('b'), new Owner('c')];
    timers.set(a.dl, 'end', 100);
    jest.advanceTimersByTime(40);
    timers.set(b.dl, 'end', 100);
    timers.set(c.dl, 'end', 100);
    timers.clear(c.dl); // as terminate or a new state would
    jest.advanceTimersByTime(58);
    expect(fired).toEqual([]);
    jest.advanceTimersByTime(2);
    expect(fired).toEqual(['a:end']);
    jest.advanceTimersByTime(38);
    expect(fired).toEqual(['a:end']);
    jest.advanceTimersByTime(2);
    expect(fired).toEqual(['a:end', 'b:end']);
    timers.set(c.dl, 'end', 100); // armed again after the clear: fires again
    jest.advanceTimersByTime(100);
    expect(fired).toEqual(['a:end', 'b:end', 'c:end']);
  });

  it('a timer armed from a firing one runs too, and one Node timer a duration serves them all', () => {
    const fired: string[] = [];
    const timers: TimerService<Owner> = new TimerService<Owner>((o, name) => {
      fired.push(`${o.id}:${name}`);
      if (name === 'A' && fired.length < 4) timers.set(o.rt, 'A', 10); // a retransmission timer re-arming itself
    });
    for (let i = 0; i < 3000; i++) timers.set(new Owner(String(i)).dl, 'B', 50);
    timers.set(new Owner('x').rt, 'A', 10);
    expect(jest.getTimerCount()).toBe(2);
    jest.advanceTimersByTime(30);
    expect(fired).toEqual(['x:A', 'x:A', 'x:A']);
    jest.advanceTimersByTime(20);
    expect(fired.length).toBe(3004);
  });

  it('stop() drops everything and leaves no timer running', () => {
    const { timers, fired } = service();
    for (let i = 0; i < 10; i++) timers.set(new Owner(String(i)).dl, 'H', 10);
    timers.stop();
    expect(jest.getTimerCount()).toBe(0);
    jest.advanceTimersByTime(100);
    expect(fired).toEqual([]);
    expect(timers.size).toBe(0);
  });
});
