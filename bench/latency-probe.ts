import * as dgram from 'node:dgram';

/**
 * Measures INVITE→200 OK round-trip times with microsecond resolution (sipp's own response
 * times are in whole milliseconds, too coarse on loopback). Sends complete calls (INVITE, ACK,
 * BYE) at a fixed, moderate rate so the callee sees ordinary traffic.
 */
export async function probeLatency(opts: {
  target: { host: string; port: number };
  localIp: string;
  rate: number;
  calls: number;
  service: string;
  fromUser: string;
}): Promise<number[]> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, opts.localIp, () => r()));
  const localPort = sock.address().port;
  const sentAt = new Map<string, bigint>();
  const rtts: number[] = [];
  const { host, port } = opts.target;

  const send = (text: string): void => {
    sock.send(Buffer.from(text, 'latin1'), port, host);
  };
  const inDialog = (method: 'ACK' | 'BYE', callId: string, toHeader: string, cseq: number): string =>
    [
      `${method} sip:${opts.service}@${host}:${port} SIP/2.0`,
      `Via: SIP/2.0/UDP ${opts.localIp}:${localPort};branch=z9hG4bK-${method}-${callId};rport`,
      `Max-Forwards: 70`,
      `From: <sip:${opts.fromUser}@${opts.localIp}>;tag=probe-${callId}`,
      `To: ${toHeader}`,
      `Call-ID: ${callId}`,
      `CSeq: ${cseq} ${method}`,
      `Content-Length: 0`,
      '',
      '',
    ].join('\r\n');

  const routeOf = new Map<string, string>();
  sock.on('message', (msg) => {
    const text = msg.toString('latin1');
    const status = Number(text.slice(8, 11));
    const callId = /\r\nCall-ID:\s*([^\r\n]+)/i.exec(text)?.[1]?.trim();
    const cseq = /\r\nCSeq:\s*(\d+)\s+(\w+)/i.exec(text);
    if (!callId || !cseq) return;
    if (cseq[2] === 'INVITE' && status >= 200 && sentAt.has(callId)) {
      rtts.push(Number(process.hrtime.bigint() - sentAt.get(callId)!) / 1000);
      sentAt.delete(callId);
      const to = /\r\nTo:\s*([^\r\n]+)/i.exec(text)![1];
      const rr = [...text.matchAll(/\r\nRecord-Route:\s*([^\r\n]+)/gi)].map((m) => m[1]);
      routeOf.set(callId, rr.join(', '));
      let ack = inDialog('ACK', callId, to, 1);
      let bye = inDialog('BYE', callId, to, 2);
      if (rr.length > 0) {
        ack = ack.replace('Max-Forwards: 70', `Max-Forwards: 70\r\nRoute: ${rr.join(', ')}`);
        bye = bye.replace('Max-Forwards: 70', `Max-Forwards: 70\r\nRoute: ${rr.join(', ')}`);
      }
      send(ack);
      send(bye);
    }
  });

  const interval = 1000 / opts.rate;
  const start = Date.now();
  for (let i = 0; i < opts.calls; i++) {
    const due = start + i * interval;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const callId = `probe-${process.pid}-${port}-${i}`;
    const invite = [
      `INVITE sip:${opts.service}@${host}:${port} SIP/2.0`,
      `Via: SIP/2.0/UDP ${opts.localIp}:${localPort};branch=z9hG4bK-inv-${callId};rport`,
      `Max-Forwards: 70`,
      `From: <sip:${opts.fromUser}@${opts.localIp}>;tag=probe-${callId}`,
      `To: <sip:${opts.service}@${host}:${port}>`,
      `Call-ID: ${callId}`,
      `CSeq: 1 INVITE`,
      `Contact: <sip:${opts.fromUser}@${opts.localIp}:${localPort}>`,
      `Content-Type: application/sdp`,
      `Content-Length: 0`,
      '',
      '',
    ].join('\r\n');
    sentAt.set(callId, process.hrtime.bigint());
    send(invite);
  }
  await new Promise((r) => setTimeout(r, 1000));
  sock.close();
  return rtts;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}
