// The new pins and filesystem ops on this host's kernel through the real engine
// (orchestrator, worker, FUSE peer) on scratch ext4: legacy AIO on the FUSE peer is held
// and released; freeze and umount act on the scratch filesystem daxpin mounted, which
// serves cases again afterwards. The NBD and RDMA pins are decided by a probe of this
// kernel: where it has no nbd module (or daxpin may not add an RDMA device: outside
// its guests) the case is 'unsupported' with the reason, never a kernel errno. Needs root.
import t from 'tap';
import fs from 'node:fs';
import { CaseRecord } from '../../lib/outcome';
import { findCase, scratch } from '../helpers/engine';
import { PinPeers } from '../../lib/engine/peers';
import { PeerClient } from '../../lib/engine/peer';
import { TIMING } from '../helpers/engine';

const CASES = [
  'aio-read.punch-hole.pte-shared',
  'aio-write.punch-hole.pte-shared',
  'nbd-odirect-read.punch-hole.pte-shared',
  'nbd-aio-write.punch-hole.pte-shared',
  'rdma-mr.punch-hole.pte-shared',
  'rdma-mr-odp.punch-hole.pte-shared',
  'odirect-read.freeze.pte-shared-unmapped',
  'odirect-read.umount.pte-shared-unmapped',
  'odirect-read.unlink-umount.pte-shared-unmapped',
  'none.umount.pte-shared',
  'odirect-read.truncate-shrink.pmd-shared',
];

t.test('ext4 scratch: AIO held by the FUSE peer, NBD/RDMA decided by a probe, freeze and umount on a filesystem daxpin mounted', async (t) => {
  const nbdHere = fs.existsSync('/sys/module/nbd');
  const s = await scratch('ext4');
  t.teardown(() => s.close());
  const recs = await s.run(CASES);
  const rec = (id: string): CaseRecord => {
    const r = recs.get(id)!;
    t.comment(`${id}: ${JSON.stringify({ status: r.status, reason: r.reason, pin: r.pin, op: { ok: r.op.ok, errno: r.op.errno }, views: r.views, notes: r.notes })}`);
    return r;
  };
  for (const id of ['aio-read.punch-hole.pte-shared', 'aio-write.punch-hole.pte-shared']) {
    const r = rec(id);
    t.equal(r.status, 'done', `${id}: ran`);
    t.ok(r.pin.held, `${id}: held`);
    t.match(r.pin.evidence, /^fuse peer received (read|write) of 16384 bytes/, `${id}: the FUSE peer held the AIO request`);
    t.ok(r.release.ok && r.release.result === 16384, `${id}: io_getevents returned the whole transfer after the release`, { release: r.release });
  }
  t.equal(rec('aio-read.punch-hole.pte-shared').views.file, 'written', 'the AIO read landed in the page cache page it pinned');
  for (const id of ['nbd-odirect-read.punch-hole.pte-shared', 'nbd-aio-write.punch-hole.pte-shared']) {
    const r = rec(id);
    if (nbdHere) t.ok(r.status === 'done' && r.pin.held, `${id}: this kernel has nbd: held`);
    else {
      t.equal(r.status, 'unsupported', `${id}: no nbd module here: not applicable`);
      t.match(r.reason, /^no nbd module in kernel /, `${id}: the reason says why`);
      t.equal(r.pin.errno, null, `${id}: no errno is made up`);
    }
  }
  for (const id of ['rdma-mr.punch-hole.pte-shared', 'rdma-mr-odp.punch-hole.pte-shared']) {
    const r = rec(id);
    t.equal(r.status, 'unsupported', `${id}: outside a daxpin guest daxpin adds no RDMA device`);
    t.ok(r.reason && r.reason.length > 0, `${id}: with a reason`);
  }
  const freeze = rec('odirect-read.freeze.pte-shared-unmapped');
  t.ok(freeze.pin.held && freeze.op.ok, 'FIFREEZE and FITHAW of ext4 under a held pin returned');
  for (const id of ['odirect-read.umount.pte-shared-unmapped', 'odirect-read.unlink-umount.pte-shared-unmapped']) {
    const r = rec(id);
    t.ok(r.pin.held && r.op.ok, `${id}: the filesystem unmounted with only the pin holding the pages`);
    t.notOk(r.notes?.some((n) => n.startsWith('mount again')), `${id}: and was mounted again`);
  }
  t.equal(rec('odirect-read.umount.pte-shared-unmapped').views.file === 'n/a', false, 'the still-linked file is read back after the remount');
  const busy = rec('none.umount.pte-shared');
  t.equal(busy.op.errno, 'EBUSY', 'a live mapping of the file keeps the filesystem busy: the kernel says EBUSY');
  t.equal(rec('odirect-read.truncate-shrink.pmd-shared').status, 'done', 'a later case runs on the filesystem mounted again');
});

t.test('ops on the filesystem itself are not applicable where daxpin did not mount it (--dir)', async (t) => {
  const peers = new PinPeers(new PeerClient({ kind: 'fuse', mountPoint: '/nonexistent' }), false);
  const opt = { dir: '/tmp', hold: { mode: 'fixed' as const, holdMs: TIMING.holdMs, dwellMs: 0 }, settleMs: 1000, signalWaitMs: 1000, canaryBytes: 0, pmdExtentHint: false, mount: null };
  for (const op of ['freeze', 'umount', 'unlink-umount']) {
    t.match(await peers.notApplicable(findCase('ext4', `none.${op}.pte-shared`), opt), /daxpin mounted itself/, op);
  }
  t.equal(await peers.notApplicable(findCase('ext4', 'none.punch-hole.pte-shared'), opt), null, 'other ops apply');
});
