import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildPcap, LINKTYPE_LINUX_SLL2, parsePcap } from './pcap.js';
import { CaptureResult } from './capture.js';

const ip = (s: string) => Buffer.from(s.split('.').map(Number));

function tcpFrame(src: string, sport: number, dst: string, dport: number, payload: string, ethernet = true): Buffer {
  const data = Buffer.from(payload);
  const tcp = Buffer.alloc(20);
  tcp.writeUInt16BE(sport, 0);
  tcp.writeUInt16BE(dport, 2);
  tcp[12] = 5 << 4;
  const iph = Buffer.alloc(20);
  iph[0] = 0x45;
  iph.writeUInt16BE(20 + 20 + data.length, 2);
  iph[8] = 64;
  iph[9] = 6;
  ip(src).copy(iph, 12);
  ip(dst).copy(iph, 16);
  const packet = Buffer.concat([iph, tcp, data]);
  if (!ethernet) return packet;
  const eth = Buffer.alloc(14);
  eth.writeUInt16BE(0x0800, 12);
  // Ethernet pads short frames to 60 bytes; the parser must cut at the IP total length.
  const frame = Buffer.concat([eth, packet]);
  return frame.length < 60 ? Buffer.concat([frame, Buffer.alloc(60 - frame.length, 0xee)]) : frame;
}

test('parses Ethernet IPv4 TCP packets with addresses, ports and exact payload', () => {
  const file = buildPcap([tcpFrame('10.0.1.2', 40000, '10.0.2.2', 8080, 'hello'), tcpFrame('10.0.2.2', 8080, '10.0.1.2', 40000, '')]);
  const pkts = parsePcap(file);
  assert.equal(pkts.length, 2);
  assert.deepEqual(
    { network: pkts[0]!.network, transport: pkts[0]!.transport, src: pkts[0]!.src, srcPort: pkts[0]!.srcPort, dst: pkts[0]!.dst, dstPort: pkts[0]!.dstPort },
    { network: 'ipv4', transport: 'tcp', src: '10.0.1.2', srcPort: 40000, dst: '10.0.2.2', dstPort: 8080 },
  );
  assert.equal(pkts[0]!.payload.toString(), 'hello');
  assert.equal(pkts[1]!.payload.length, 0); // padding is not payload
});

test('parses Linux cooked v2 captures (tcpdump -i any)', () => {
  const sll2 = Buffer.alloc(20);
  sll2.writeUInt16BE(0x0800, 0);
  const frame = Buffer.concat([sll2, tcpFrame('10.0.1.3', 1, '10.0.2.3', 15008, 'x', false)]);
  const [p] = parsePcap(buildPcap([frame], LINKTYPE_LINUX_SLL2));
  assert.equal(p!.dstPort, 15008);
  assert.equal(p!.payload.toString(), 'x');
});

test('empty and truncated files: nothing captured yet, partial last record dropped', () => {
  assert.deepEqual(parsePcap(Buffer.alloc(0)), []);
  const file = buildPcap([tcpFrame('10.0.1.2', 1, '10.0.2.2', 2, 'a'), tcpFrame('10.0.1.2', 1, '10.0.2.2', 2, 'b')]);
  assert.equal(parsePcap(file.subarray(0, file.length - 3)).length, 1);
  assert.throws(() => parsePcap(Buffer.alloc(24, 1)), /unknown magic/);
});

test('capture results find markers, also split across packets', () => {
  const r = new CaptureResult(
    parsePcap(
      buildPcap([
        tcpFrame('10.0.1.2', 5, '10.0.2.2', 8080, 'xx SECRET-'),
        tcpFrame('10.0.1.2', 5, '10.0.2.2', 8080, 'MARKER yy'),
        tcpFrame('10.0.1.2', 5, '10.0.2.2', 8080, 'PLAIN-1 here'),
      ]),
    ),
  );
  assert.ok(r.contains('SECRET-MARKER'));
  assert.equal(r.packetsContaining('PLAIN-1')[0]!.dstPort, 8080);
  assert.ok(!r.contains('NOT-THERE'));
  assert.match(r.summary(), /^tcp 10\.0\.1\.2:5 > 10\.0\.2\.2:8080 len 10$/m);
  assert.equal(r.text, 'xx SECRET-MARKER yyPLAIN-1 here');
});
