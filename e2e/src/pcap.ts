// A minimal reader for the classic pcap files tcpdump writes with -w. We parse the file ourselves instead of
// scraping `tcpdump -A` text because tests need exact payload bytes (a marker string that must or must not cross
// the wire) and per-packet addresses and ports (e.g. "only :15008 between nodes"), and text output mangles both.
// Pure code: no I/O, unit-tested with handmade files.

export interface CapturedPacket {
  /** Capture time, microseconds since the epoch. */
  timeUs: number;
  /** 'ipv4' | 'ipv6' | 'arp' | 'other' */
  network: string;
  /** 'tcp' | 'udp' | 'icmp' | 'other' (or '' when not IP). */
  transport: string;
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  /** TCP/UDP payload bytes (empty for pure ACKs, SYNs, non-IP frames). */
  payload: Buffer;
  /** Whole captured frame, for searches that should not depend on our header parsing. */
  frame: Buffer;
}

export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_RAW = 101;
export const LINKTYPE_LINUX_SLL = 113;
export const LINKTYPE_IPV4 = 228;
export const LINKTYPE_LINUX_SLL2 = 276;

const MAGIC_US = 0xa1b2c3d4;
const MAGIC_NS = 0xa1b23c4d;

export function parsePcap(file: Buffer): CapturedPacket[] {
  if (file.length === 0) return []; // tcpdump killed before it wrote the header: nothing captured
  if (file.length < 24) throw new Error(`pcap: truncated global header (${file.length} bytes)`);
  let le: boolean;
  let nanos: boolean;
  const magicLe = file.readUInt32LE(0);
  const magicBe = file.readUInt32BE(0);
  if (magicLe === MAGIC_US || magicLe === MAGIC_NS) {
    le = true;
    nanos = magicLe === MAGIC_NS;
  } else if (magicBe === MAGIC_US || magicBe === MAGIC_NS) {
    le = false;
    nanos = magicBe === MAGIC_NS;
  } else {
    throw new Error(`pcap: unknown magic 0x${magicBe.toString(16)} (pcapng is not supported; use tcpdump -w)`);
  }
  const u32 = (off: number) => (le ? file.readUInt32LE(off) : file.readUInt32BE(off));
  const linktype = u32(20) & 0x0fffffff;
  const packets: CapturedPacket[] = [];
  let off = 24;
  // A capture stopped mid-write may end with a partial record; keep what is complete.
  while (off + 16 <= file.length) {
    const sec = u32(off);
    const frac = u32(off + 4);
    const incl = u32(off + 8);
    off += 16;
    if (off + incl > file.length) break;
    const frame = file.subarray(off, off + incl);
    off += incl;
    const timeUs = sec * 1e6 + (nanos ? Math.floor(frac / 1000) : frac);
    packets.push({ timeUs, frame, ...decodeLink(linktype, frame) });
  }
  return packets;
}

type Decoded = Omit<CapturedPacket, 'timeUs' | 'frame'>;

const NOT_IP: Decoded = { network: 'other', transport: '', src: '', dst: '', srcPort: 0, dstPort: 0, payload: Buffer.alloc(0) };

function decodeLink(linktype: number, frame: Buffer): Decoded {
  switch (linktype) {
    case LINKTYPE_ETHERNET: {
      if (frame.length < 14) return NOT_IP;
      let type = frame.readUInt16BE(12);
      let off = 14;
      while ((type === 0x8100 || type === 0x88a8) && frame.length >= off + 4) {
        type = frame.readUInt16BE(off + 2); // VLAN tag(s)
        off += 4;
      }
      return decodeEthertype(type, frame.subarray(off));
    }
    case LINKTYPE_LINUX_SLL:
      return frame.length < 16 ? NOT_IP : decodeEthertype(frame.readUInt16BE(14), frame.subarray(16));
    case LINKTYPE_LINUX_SLL2:
      return frame.length < 20 ? NOT_IP : decodeEthertype(frame.readUInt16BE(0), frame.subarray(20));
    case LINKTYPE_RAW:
    case LINKTYPE_IPV4:
      return frame.length > 0 && frame[0]! >> 4 === 6 ? decodeIpv6(frame) : decodeIpv4(frame);
    default:
      return NOT_IP;
  }
}

function decodeEthertype(type: number, data: Buffer): Decoded {
  if (type === 0x0800) return decodeIpv4(data);
  if (type === 0x86dd) return decodeIpv6(data);
  if (type === 0x0806) return { ...NOT_IP, network: 'arp' };
  return NOT_IP;
}

function decodeIpv4(ip: Buffer): Decoded {
  if (ip.length < 20) return NOT_IP;
  const ihl = (ip[0]! & 0x0f) * 4;
  const total = Math.min(ip.readUInt16BE(2), ip.length); // drop Ethernet padding after the IP packet
  const proto = ip[9]!;
  const src = [...ip.subarray(12, 16)].join('.');
  const dst = [...ip.subarray(16, 20)].join('.');
  return { network: 'ipv4', src, dst, ...decodeTransport(proto, ip.subarray(ihl, total)) };
}

function decodeIpv6(ip: Buffer): Decoded {
  if (ip.length < 40) return NOT_IP;
  const len = Math.min(ip.readUInt16BE(4), ip.length - 40);
  const next = ip[6]!; // extension headers are not followed; our traffic does not use them
  const hex = (b: Buffer) => Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2).toString(16)).join(':');
  return { network: 'ipv6', src: hex(ip.subarray(8, 24)), dst: hex(ip.subarray(24, 40)), ...decodeTransport(next, ip.subarray(40, 40 + len)) };
}

function decodeTransport(proto: number, seg: Buffer): Pick<Decoded, 'transport' | 'srcPort' | 'dstPort' | 'payload'> {
  if (proto === 6 && seg.length >= 20) {
    const dataOff = (seg[12]! >> 4) * 4;
    return { transport: 'tcp', srcPort: seg.readUInt16BE(0), dstPort: seg.readUInt16BE(2), payload: seg.subarray(dataOff) };
  }
  if (proto === 17 && seg.length >= 8) {
    return { transport: 'udp', srcPort: seg.readUInt16BE(0), dstPort: seg.readUInt16BE(2), payload: seg.subarray(8) };
  }
  const transport = proto === 1 || proto === 58 ? 'icmp' : 'other';
  return { transport, srcPort: 0, dstPort: 0, payload: Buffer.alloc(0) };
}

/** Builds a pcap file (Ethernet link type) from raw frames; for unit tests of code that reads captures. */
export function buildPcap(frames: readonly Buffer[], linktype = LINKTYPE_ETHERNET): Buffer {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(MAGIC_US, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(262144, 16);
  header.writeUInt32LE(linktype, 20);
  const records = frames.map((f, i) => {
    const rec = Buffer.alloc(16);
    rec.writeUInt32LE(1_700_000_000 + i, 0);
    rec.writeUInt32LE(0, 4);
    rec.writeUInt32LE(f.length, 8);
    rec.writeUInt32LE(f.length, 12);
    return Buffer.concat([rec, f]);
  });
  return Buffer.concat([header, ...records]);
}
