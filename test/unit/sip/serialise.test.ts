import { parseMessage, type SipMessage, type SipRequest } from '../../../src/sip/message';

/** The serialisation before untouched runs were reused: every field written, the head as one string. */
function reference(m: SipMessage): string {
  if (!m.modified && m.has('content-length') && m.raw.length === m.headLength + m.body.length) return m.raw;
  let head = (m as unknown as { startLine(): string }).startLine() + '\r\n';
  let hasCl = false;
  for (const f of m.fields) {
    head += (f.raw ?? `${f.name}: ${f.value}`) + '\r\n';
    if (f.key === 'content-length') hasCl = true;
  }
  if (!hasCl) head += `Content-Length: ${m.body.length}\r\n`;
  head += '\r\n';
  return head + m.body;
}

const invite = (eol: string, extra = ''): string =>
  [
    'INVITE sip:095550111@core;user=phone SIP/2.0',
    'Via: SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bK-a, SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK-b',
    'v: SIP/2.0/UDP 10.0.0.3;branch=z9hG4bK-c',
    'Max-Forwards: 70',
    'Route: <sip:proxy.example;lr>, <sip:core.example;lr>',
    'From: "Alice" <sip:alice@example.com>;tag=1',
    'To: <sip:095550111@core>',
    'Call-ID: abc@10.0.0.1',
    'CSeq: 1 INVITE',
    'Subject: caf\xc3\xa9 \xc3\xa0',
    ...(extra ? [extra] : []),
    'Content-Type: application/sdp',
    'Content-Length: 4',
    '',
    'v=0\n',
  ].join(eol);

const edits: Array<[string, (m: SipMessage) => void]> = [
  ['none', () => undefined],
  ['prepend Via', (m) => m.prependHeader('Via', 'SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKtgX')],
  ['set Max-Forwards', (m) => m.setHeader('Max-Forwards', '69')],
  ['append header', (m) => m.appendHeader('X-Test', 'yes')],
  ['remove first Via value', (m) => void m.removeFirstValue('via')],
  ['remove first Route value', (m) => void m.removeFirstValue('route')],
  ['remove last Route value', (m) => void m.removeLastValue('route')],
  ['replace first Via value', (m) => m.replaceFirstValue('via', 'SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bK-a;received=1.2.3.4')],
  ['remove Content-Length', (m) => m.removeHeader('content-length')],
  ['proxy forwarding', (m) => {
    m.setHeader('Max-Forwards', '69');
    m.prependHeader('Record-Route', '<sip:127.0.0.1;lr>');
    m.prependHeader('Via', 'SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKtgY');
  }],
  ['new Request-URI', (m) => (m as SipRequest).setUri('sip:x@y')],
];

describe('toText() writes what the field-by-field serialisation wrote', () => {
  const texts: Array<[string, string]> = [
    ['CRLF', invite('\r\n')],
    ['LF only', invite('\n')],
    ['leading CRLFs', '\r\n\r\n' + invite('\r\n')],
    ['folded header', invite('\r\n', 'X-Long: one\r\n two\r\n\tthree')],
    ['mixed line ends', invite('\r\n').replace('Max-Forwards: 70\r\n', 'Max-Forwards: 70\n')],
    ['spaces around values', invite('\r\n', 'X-Pad:    padded value   ')],
    ['no Content-Length', invite('\r\n').replace('Content-Length: 4\r\n', '')],
    ['response', 'SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKtgZ\r\nVia: SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bK-a\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n'],
  ];
  for (const [label, text] of texts) {
    for (const [edit, apply] of edits) {
      if (edit === 'new Request-URI' && label === 'response') continue;
      it(`${label}, ${edit}`, () => {
        const m = parseMessage(Buffer.from(text, 'latin1'));
        apply(m);
        expect(m.toText()).toBe(reference(m));
        expect(m.toBuffer().equals(Buffer.from(reference(m), 'latin1'))).toBe(true);
      });
    }
  }
});
