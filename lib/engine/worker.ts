// A worker process: starts the I/O peers and runs case timelines one at a
// time for the orchestrator. It lives across cases (starting node is slow under
// qemu TCG) and is replaced when a case leaves a thread stuck in the kernel.
import fs from 'node:fs';
import { Case, findConfig, filterCases, LAYOUT_OPS, MAPPINGS, PIN_METHODS, caseId } from '../cases/matrix';
import { native } from '../native';
import { PeerClient } from './peer';
import { PinPeers } from './peers';
import { PmdProbe } from './pmd';
import { FromWorker, PEER_GONE_EXIT, ToWorker } from './protocol';
import { runTimeline } from './timeline';


function send(m: FromWorker): void {
  if (process.connected) process.send!(m);
}


function lookup<T extends { name: string }>(table: T[], name: string, what: string): T {
  const found = table.find((x) => x.name === name);
  if (!found) throw new Error(`unknown ${what} ${name}`);
  return found;
}

/**
 * Fault injection for the reliability tests; unset in real runs. Before a case whose
 * id or "config/id" matches the glob:
 *   DAXPIN_TEST_WORKER_ABORT  the worker aborts (SIGABRT from native code, as a crash in the addon would);
 *   DAXPIN_TEST_WORKER_STALL  the main thread blocks in read(2) on a pipe nobody writes,
 *                             so only the orchestrator's deadline can end the case.
 */
function injectTestFault(c: Case): void {
  const matches = (glob: string | undefined) => glob !== undefined && glob !== '' && filterCases([c], [glob]).length > 0;
  if (matches(process.env.DAXPIN_TEST_WORKER_ABORT)) process.abort();
  if (matches(process.env.DAXPIN_TEST_WORKER_STALL)) fs.readSync(native.pipe(4096)[0], Buffer.alloc(1));
}

async function main(): Promise<void> {
  const fuseMount = process.argv[2];
  if (!fuseMount || !process.send) throw new Error('usage: worker <fuse-mount-point> (started by the orchestrator)');
  const fuse = new PeerClient({ kind: 'fuse', mountPoint: fuseMount });
  // DAXPIN_RESULTS is set in daxpin's own guests only (the results share).
  const peers = new PinPeers(fuse, process.env.DAXPIN_RESULTS !== undefined);
  // The case in progress, and which peer its pin goes through.
  let current: { seq: number; usesPeer: 'fuse' | 'nbd' | null } | null = null;
  // A dead peer leaves its FUSE mount aborted: whatever this worker measures through it
  // from now on is ENOTCONN, not the kernel's behaviour. Say so at once and go; the
  // orchestrator records the case as daxpin's failure and starts a fresh worker and peer.
  // A case that does not use the peer (vmsplice, registered buffers) is finished first.
  let leaving = false;
  let goneAfterCase: string | null = null;
  const leave = (how: string, seq: number | null) => {
    if (leaving) return;
    leaving = true;
    const exit = () => process.exit(PEER_GONE_EXIT);
    if (!process.connected) exit();
    process.send!({ type: 'peer-gone', seq, how } satisfies FromWorker, undefined, {}, exit);
  };
  peers.onGone = (kind, how) => {
    if (current !== null && current.usesPeer !== kind) goneAfterCase = how;
    else leave(how, current?.seq ?? null);
  };
  await fuse.start();
  const pmdProbe = new PmdProbe();
  let queue = Promise.resolve();

  process.on('message', (m: ToWorker) => {
    queue = queue.then(async () => {
      if (m.type === 'exit') {
        await peers.stop();
        process.exit(0);
      }
      const config = findConfig(m.config);
      try {
        if (!config) throw new Error(`unknown config ${m.config}`);
        const mapping = lookup(MAPPINGS, m.mapping, 'mapping');
        const pinMethod = lookup(PIN_METHODS, m.pinMethod, 'pin method');
        const layoutOp = lookup(LAYOUT_OPS, m.layoutOp, 'layout op');
        const c = { config, mapping, pinMethod, layoutOp, id: caseId(pinMethod.name, layoutOp.name, mapping.name) };
        current = { seq: m.seq, usesPeer: pinMethod.peer };
        injectTestFault(c);
        const observation = await runTimeline(c, m.options, peers, pmdProbe, m.seq, (tid) => send({ type: 'op-thread', seq: m.seq, tid }));
        // Its exit event may not have arrived yet: ask the peer's pid directly.
        const gone = current.usesPeer ? peers.gone(current.usesPeer) : null;
        if (gone !== null) leave(gone, m.seq);
        else send({ type: 'result', seq: m.seq, observation });
      } catch (e) {
        const gone = current?.usesPeer ? peers.gone(current.usesPeer) : null;
        if (gone !== null) leave(gone, m.seq);
        else send({ type: 'failed', seq: m.seq, error: e instanceof Error ? e.message : String(e) });
      } finally {
        current = null;
      }
      const gone = goneAfterCase ?? peers.gone('fuse') ?? peers.gone('nbd');
      if (gone !== null) leave(gone, null);
    });
  });
  // The orchestrator going away must not leave a FUSE or NBD server behind.
  process.on('disconnect', () => {
    peers.stop().finally(() => process.exit(0));
  });
  send({ type: 'ready' });
}

main().catch((e) => {
  process.stderr.write(`daxpin worker: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(3);
});
