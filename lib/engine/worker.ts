// A worker process: starts the I/O peers and runs case timelines one at a
// time for the orchestrator. It lives across cases (starting node is slow under
// qemu TCG) and is replaced when a case leaves a thread stuck in the kernel.
import fs from 'node:fs';
import { Case, findConfig, filterCases, LAYOUT_OPS, MAPPINGS, PIN_METHODS, caseId } from '../cases/matrix';
import { native } from '../native';
import { PeerClient } from './peer';
import { PinPeers } from './peers';
import { PmdProbe } from './pmd';
import { FromWorker, ToWorker } from './protocol';
import { runTimeline } from './timeline';

function send(m: FromWorker): void {
  process.send!(m);
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
  await fuse.start();
  // DAXPIN_RESULTS is set in daxpin's own guests only (the results share).
  const peers = new PinPeers(fuse, process.env.DAXPIN_RESULTS !== undefined);
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
        injectTestFault(c);
        const observation = await runTimeline(c, m.options, peers, pmdProbe, m.seq, (tid) => send({ type: 'op-thread', seq: m.seq, tid }));
        send({ type: 'result', seq: m.seq, observation });
      } catch (e) {
        send({ type: 'failed', seq: m.seq, error: e instanceof Error ? e.message : String(e) });
      }
    });
  });
  // The orchestrator going away must not leave a FUSE server behind.
  process.on('disconnect', () => {
    peers.stop().finally(() => process.exit(0));
  });
  send({ type: 'ready' });
}

main().catch((e) => {
  process.stderr.write(`daxpin worker: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(3);
});
