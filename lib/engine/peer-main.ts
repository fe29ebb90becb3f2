// An I/O peer runs in a process of its own, a child of the worker: the FUSE server
// (fuse.ts) or the NBD server (nbd.ts). A process must never serve a FUSE mount it
// also uses: any close, GC'd handle or exit path that waits on the server from the
// serving thread deadlocks; the NBD peer lives apart for the same reason and so that
// both die alike. The worker only uses the file or device and the peer only serves
// it; if the worker dies, the IPC channel closes, the peer exits, and the kernel
// aborts the FUSE connection or fails the NBD requests, which drops every pin held.
import { makePattern } from '../cases/patterns';
import { PAGE } from '../cases/matrix';
import { FusePeer, HeldRequest, ReadData } from './fuse';
import { NbdPeer } from './nbd';
import { PeerCommand, PeerEvent, parsePeerArgs } from './peer';

/**
 * Fault injection for the reliability tests; unset in real runs. With
 * DAXPIN_TEST_PEER_NO_REPLY=1 this peer answers no held READ/WRITE, like an I/O
 * device that never completes: a pin stays held through its release until the peer
 * stops (a case then lasts its settle time with the pin held).
 */
const NO_REPLY = process.env.DAXPIN_TEST_PEER_NO_REPLY === '1';

/** Exit status of a peer whose server side ended by itself. */
const PEER_SERVER_GONE_EXIT = 5;

function send(m: PeerEvent): void {
  if (process.connected) process.send!(m);
}

/** What peer-main needs of either server. */
interface Server {
  readData: ReadData;
  on(event: 'held', listener: (r: HeldRequest) => void): unknown;
  on(event: 'gone', listener: (e: unknown) => void): unknown;
  releaseAll(): number;
  stop(): Promise<void>;
}

async function main(): Promise<void> {
  const spec = parsePeerArgs(process.argv.slice(2));
  if (!spec || !process.send) throw new Error('usage: peer-main fuse <mount-point> | nbd <timeout-seconds> (started by a worker)');
  let server: Server;
  let path: string;
  // Arming matters to the NBD server only: the FUSE file serves nothing but pins.
  let arm = (): void => undefined;
  if (spec.kind === 'fuse') {
    const fuse = new FusePeer(spec.mountPoint);
    await fuse.start();
    server = fuse;
    path = fuse.filePath;
  } else {
    const nbd = new NbdPeer(spec.timeoutSeconds);
    await nbd.start();
    server = nbd;
    path = nbd.devicePath;
    arm = () => nbd.arm();
  }
  server.on('held', (r) => send({ type: 'held', kind: r.kind, offset: r.offset, size: r.size }));
  // The server side ended (the NBD connection closed or timed out): a peer that cannot
  // serve exits, and the worker's client reports it gone.
  server.on('gone', (e) => {
    process.stderr.write(`daxpin peer: ${e instanceof Error ? e.message : String(e)}\n`);
    server.stop().finally(() => process.exit(PEER_SERVER_GONE_EXIT));
  });
  process.on('message', async (m: PeerCommand) => {
    switch (m.type) {
      case 'arm':
        arm();
        send({ type: 'armed' });
        return;
      case 'release':
        server.readData = (offset, size) => makePattern(size, m.tag, Math.floor(offset / PAGE));
        if (!NO_REPLY) server.releaseAll();
        return;
      case 'stop':
        await server.stop();
        process.exit(0);
    }
  });
  process.on('disconnect', () => {
    server.stop().finally(() => process.exit(0));
  });
  send({ type: 'ready', path });
}

main().catch((e) => {
  process.stderr.write(`daxpin peer: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(3);
});
