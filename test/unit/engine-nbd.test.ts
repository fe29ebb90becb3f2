// The NBD peer's wire format and timeout, and the peer process's arguments. No
// kernel needed; the device itself is exercised in guests (test/vm/peers.test.ts).
import t from 'tap';
import { NBD_CMD, NbdRequestParser, nbdReply, nbdTimeoutSeconds } from '../../lib/engine/nbd';
import { parsePeerArgs, peerArgs } from '../../lib/engine/peer';

function request(type: number, handle: number, offset: number, length: number, payload?: Buffer, flags = 0): Buffer {
  const h = Buffer.alloc(28);
  h.writeUInt32BE(0x25609513, 0);
  h.writeUInt16BE(flags, 4);
  h.writeUInt16BE(type, 6);
  h.writeBigUInt64BE(BigInt(handle), 8);
  h.writeBigUInt64BE(BigInt(offset), 16);
  h.writeUInt32BE(length, 24);
  return payload ? Buffer.concat([h, payload]) : h;
}

t.test('requests are parsed from any split of the stream, a WRITE with its payload', async (t) => {
  const payload = Buffer.alloc(8192, 0xab);
  const stream = Buffer.concat([request(NBD_CMD.READ, 7, 65536, 16384), request(NBD_CMD.WRITE, 8, 4096, 8192, payload, 1), request(NBD_CMD.FLUSH, 9, 0, 0)]);
  for (const cut of [1, 27, 28, 29, 28 + 28 + 100, stream.length - 1]) {
    const p = new NbdRequestParser();
    const got = [...p.push(stream.subarray(0, cut)), ...p.push(stream.subarray(cut))];
    t.same(
      got.map((r) => [r.type, r.handle.readBigUInt64BE(0), r.offset, r.length, r.payload?.length ?? null]),
      [
        [NBD_CMD.READ, 7n, 65536, 16384, null],
        [NBD_CMD.WRITE, 8n, 4096, 8192, 8192],
        [NBD_CMD.FLUSH, 9n, 0, 0, null],
      ],
      `cut at ${cut}`,
    );
    t.ok(got[1].payload!.equals(payload), 'the payload is the bytes sent');
  }
});

t.test('a stream that is not NBD is refused', async (t) => {
  t.throws(() => new NbdRequestParser().push(Buffer.alloc(28)), /bad magic/);
});

t.test('a reply echoes the handle, carries the error, and a READ its data', async (t) => {
  const handle = Buffer.from('0123456789abcdef', 'hex');
  const r = nbdReply(handle, 0, Buffer.alloc(4096, 1));
  t.equal(r.length, 16 + 4096);
  t.equal(r.readUInt32BE(0), 0x67446698);
  t.equal(r.readUInt32BE(4), 0);
  t.ok(r.subarray(8, 16).equals(handle));
  t.equal(nbdReply(handle, 22).readUInt32BE(4), 22);
  t.equal(nbdReply(handle, 22).length, 16);
});

t.test('the request timeout outlasts the longest hold of a pin', async (t) => {
  for (const [hold, settle] of [[0, 0], [300, 1000], [1500, 500], [10_000, 2000]]) {
    const s = nbdTimeoutSeconds(hold, settle);
    t.ok(Number.isInteger(s) && s * 1000 > Math.max(2000, hold) + hold + settle, `hold ${hold} settle ${settle}: ${s} s`);
  }
});

t.test('peer process arguments round-trip; anything else is refused', async (t) => {
  t.same(parsePeerArgs(peerArgs({ kind: 'fuse', mountPoint: '/tmp/m' })), { kind: 'fuse', mountPoint: '/tmp/m' });
  t.same(parsePeerArgs(peerArgs({ kind: 'nbd', timeoutSeconds: 12 })), { kind: 'nbd', timeoutSeconds: 12 });
  t.equal(parsePeerArgs(['nbd', 'x']), null);
  t.equal(parsePeerArgs(['fuse']), null);
  t.equal(parsePeerArgs([]), null);
});
