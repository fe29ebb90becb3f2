// The FUSE I/O peer runs in a process of its own, a child of the worker. A
// process must never serve a FUSE mount it also uses: any close, GC'd handle or
// exit path that waits on the server from the serving thread deadlocks. Here the
// worker only uses the file and the peer only serves it; if the worker dies, the
// IPC channel closes, the peer exits, and the kernel aborts the connection,
// which drops every pin still held.
import { makePattern } from '../cases/patterns';
import { PAGE } from '../cases/matrix';
import { FusePeer } from './fuse';
import { PeerCommand, PeerEvent } from './peer';

/**
 * Fault injection for the reliability tests; unset in real runs. With
 * DAXPIN_TEST_PEER_NO_REPLY=1 this peer answers no held READ/WRITE, like an I/O
 * device that never completes: a pin stays held through its release until the peer
 * stops (a case then lasts its settle time with the pin held).
 */
const NO_REPLY = process.env.DAXPIN_TEST_PEER_NO_REPLY === '1';

function send(m: PeerEvent): void {
  if (process.connected) process.send!(m);
}

async function main(): Promise<void> {
  const mountPoint = process.argv[2];
  if (!mountPoint || !process.send) throw new Error('usage: peer-main <mount-point> (started by a worker)');
  const peer = new FusePeer(mountPoint);
  peer.on('held', (r) => send({ type: 'held', kind: r.kind, offset: r.offset, size: r.size }));
  await peer.start();
  process.on('message', async (m: PeerCommand) => {
    switch (m.type) {
      case 'arm':
        peer.readData = (offset, size) => makePattern(size, m.tag, Math.floor(offset / PAGE));
        send({ type: 'armed' });
        return;
      case 'release':
        send({ type: 'released', count: NO_REPLY ? 0 : peer.releaseAll() });
        return;
      case 'stop':
        await peer.stop();
        process.exit(0);
    }
  });
  process.on('disconnect', () => {
    peer.stop().finally(() => process.exit(0));
  });
  send({ type: 'ready' });
}

main().catch((e) => {
  process.stderr.write(`daxpin peer: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(3);
});
