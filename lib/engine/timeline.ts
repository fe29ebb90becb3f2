// One case, start to end, inside a worker process:
//   create a patterned file -> map -> fault in -> pin -> (unmap) -> start the op
//   -> hold -> (canaries) -> release -> settle -> (signal) -> read views -> clean up.
// Every value returned is an observation; nothing is decided here about whether
// it is right. Timing is relative to the op's start and the pin's release.
import fs from 'node:fs';
import path from 'node:path';
import { randomInt } from 'node:crypto';
import { promisify } from 'node:util';
import {
  Case,
  LayoutOp,
  PinIo,
  PAGE,
  PIN_FIRST_PAGE,
  PIN_PAGES,
  PMD_FILE_PAGES,
  PMD_SIZE,
  PTE_FILE_PAGES,
} from '../cases/matrix';
import { ORIGINAL, Tag, ViewExpectation, WRITTEN, classifyView, makePattern } from '../cases/patterns';
import { HungState, SyscallResult, ViewClass, Views } from '../outcome';
import { CaseObservation, TimelineOptions } from './protocol';
import {
  BlockingCall,
  FALLOC_FL_COLLAPSE_RANGE,
  FALLOC_FL_INSERT_RANGE,
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  FALLOC_FL_ZERO_RANGE,
  FS_XFLAG_DAX,
  FS_XFLAG_EXTSIZE,
  AioHandle,
  MappingHandle,
  RdmaDeviceHandle,
  RingHandle,
  isDax,
  isSystemError,
  native,
} from '../native';
import { PeerClient } from './peer';
import { PinPeers } from './peers';
import { odpOffered } from './rdma';
import { PmdProbe } from './pmd';
import { holdersUnder, readTaskState } from './tasks';
import { within } from './time';



const OK: SyscallResult = { ok: true, errno: null };
const NA_VIEWS: Views = { buffer: 'n/a', pipe: 'n/a', file: 'n/a', peer: 'n/a', canary: 'n/a' };

function failure(e: unknown): SyscallResult {
  if (isSystemError(e)) return { ok: false, errno: e.code };
  throw e;
}

function newTag(gen: number, fileId = randomInt(1, 0x7fffffff)): Tag {
  return { fileId, gen };
}

const openAsync = promisify(fs.open) as (path: string, flags: number) => Promise<number>;


interface Settled {
  result: SyscallResult;
  at: number;
}

/** Tracks a blocking call: when it settled and how. */
function track(call: BlockingCall): { call: BlockingCall; settled: Promise<Settled>; done: Settled | null } {
  const t = {
    call,
    done: null as Settled | null,
    settled: call.promise.then(
      () => ({ result: OK, at: performance.now() }),
      (e) => ({ result: failure(e), at: performance.now() }),
    ),
  };
  t.settled.then((s) => (t.done = s));
  return t;
}

/** The op as a sequence of blocking steps (unlink is unlink + last close). */
function opSteps(op: LayoutOp, f: CaseFiles, opt: TimelineOptions): Array<() => BlockingCall> {
  const pinOff = PIN_FIRST_PAGE * PAGE;
  const pinLen = PIN_PAGES * PAGE;
  const lastClose = () => {
    const fd = f.fd;
    f.fd = -1;
    return native.startClose(fd);
  };
  switch (op.kind) {
    case 'truncate':
      return [() => native.startFtruncate(f.fd, op.truncateTo === 'zero' ? 0 : pinOff)];
    case 'punch-hole':
      return [() => native.startFallocate(f.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, pinOff, pinLen)];
    case 'zero-range':
      return [() => native.startFallocate(f.fd, FALLOC_FL_ZERO_RANGE, pinOff, pinLen)];
    case 'collapse-range':
      return [() => native.startFallocate(f.fd, FALLOC_FL_COLLAPSE_RANGE, pinOff, pinLen)];
    case 'insert-range':
      return [() => native.startFallocate(f.fd, FALLOC_FL_INSERT_RANGE, pinOff, pinLen)];
    case 'ficlone':
      return op.pinnedFileIs === 'source'
        ? [() => native.startFiclone(f.peerFd!, f.fd)]
        : [() => native.startFiclone(f.fd, f.peerFd!)];
    case 'ficlonerange':
      return [() => native.startFicloneRange(f.fd, f.peerFd!, pinOff, pinLen, pinOff)];
    case 'dedupe':
      return [() => native.startDedupeRange(f.peerFd!, pinOff, pinLen, f.fd, pinOff)];
    case 'copy-range':
      return [() => native.startCopyFileRange(f.peerFd!, pinOff, f.fd, pinOff, pinLen)];
    case 'unlink':
      return [() => native.startUnlink(f.path), lastClose];
    case 'freeze':
      // The thaw is part of the op: canaries and views come after it, never into a frozen fs.
      return [
        () => {
          f.freezeFd = fs.openSync(path.dirname(f.path), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
          return native.startFreeze(f.freezeFd);
        },
        () => native.startThaw(f.freezeFd!),
      ];
    case 'umount':
      // Only the pin (and, when still mapped, the mapping: EBUSY) keeps the inode alive.
      return [...(op.unlinkFirst ? [() => native.startUnlink(f.path)] : []), lastClose, () => native.startUmount(opt.mount!.target, 0)];
    case 'dax-flag':
      return [
        () => {
          const { xflags, extsize } = native.fsGetXattr(f.fd);
          return native.startFsSetXattr(f.fd, xflags ^ FS_XFLAG_DAX, extsize);
        },
      ];
  }
}

interface CaseFiles {
  path: string;
  fd: number;
  peerPath: string | null;
  peerFd: number | null;
  fileTag: Tag;
  /** What the peer file holds when created (its own bytes, or a copy of the test file's). */
  peerTag: Tag | null;
  canaries: Array<{ path: string; tag: Tag; length: number; pattern: Buffer | null }>;
  /** The directory fd a freeze op froze the filesystem through (thawed again at clean-up). */
  freezeFd?: number;
}

/** Which files an op needs beside the pinned one, and what they hold. */
function peerFor(op: LayoutOp, fileTag: Tag): { needed: boolean; tag: Tag | null } {
  switch (op.kind) {
    case 'ficlone':
      // As source: the peer is the (empty) clone destination.
      return op.pinnedFileIs === 'source' ? { needed: true, tag: null } : { needed: true, tag: newTag(ORIGINAL) };
    case 'ficlonerange':
    case 'copy-range':
      return { needed: true, tag: newTag(ORIGINAL) };
    case 'dedupe':
      // Dedupe needs identical bytes: the peer is a copy of the pinned file.
      return { needed: true, tag: fileTag };
    default:
      return { needed: false, tag: null };
  }
}

/** Runs one case. `seq` makes file names unique within the worker's life. */
export async function runTimeline(c: Case, opt: TimelineOptions, peers: PinPeers, pmdProbe: PmdProbe, seq: number): Promise<CaseObservation> {
  const obs: CaseObservation = {
    daxVerified: false,
    pmd: null,
    map: OK,
    pin: OK,
    op: { ok: false, errno: null, started: false, returnedMs: null, blockedUntilRelease: false, afterReleaseMs: null, hung: null, taskState: null, stack: null },
    views: { ...NA_VIEWS },
    sigbus: [],
    release: { ok: true, errno: null, ms: null },
    canary: { files: 0, bytes: 0 },
    retire: false,
    notes: [],
    unsupported: null,
  };
  obs.unsupported = await peers.notApplicable(c, opt);
  if (obs.unsupported !== null) return obs;
  const pageCount = c.mapping.pageSize === 'pmd' ? PMD_FILE_PAGES : PTE_FILE_PAGES;
  const fileLen = pageCount * PAGE;
  const pinOff = PIN_FIRST_PAGE * PAGE;
  const pinLen = PIN_PAGES * PAGE;
  const base = path.join(opt.dir, `case-${process.pid}-${seq}`);
  const fileTag = newTag(ORIGINAL);
  const writtenTag: Tag = { fileId: fileTag.fileId, gen: WRITTEN };
  const files: CaseFiles = { path: `${base}.data`, fd: -1, peerPath: null, peerFd: null, fileTag, peerTag: null, canaries: [] };
  let mapping: MappingHandle | null = null;
  let ring: RingHandle | null = null;
  let aio: AioHandle | null = null;
  let rdma: RdmaDeviceHandle | null = null;
  let pipeFds: [number, number] | null = null;
  let pinFd: number | null = null;
  let opStuck = false;

  try {
    // --- the file, written before any mapping exists
    files.fd = fs.openSync(files.path, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o644);
    if (c.mapping.pageSize === 'pmd' && opt.pmdExtentHint) {
      // 2 MiB-aligned extents are a precondition of PMD faults; the hint is an XFS feature.
      try {
        const { xflags } = native.fsGetXattr(files.fd);
        await native.startFsSetXattr(files.fd, xflags | FS_XFLAG_EXTSIZE, PMD_SIZE).promise;
      } catch (e) {
        obs.notes.push(`extent size hint: ${failure(e).errno}`);
      }
    }
    fs.writeSync(files.fd, makePattern(fileLen, fileTag, 0), 0, fileLen, 0);
    obs.daxVerified = isDax(native.statx(files.path));

    const peerNeed = peerFor(c.layoutOp, fileTag);
    if (peerNeed.needed) {
      files.peerPath = `${base}.peer`;
      files.peerTag = peerNeed.tag;
      files.peerFd = fs.openSync(files.peerPath, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o644);
      if (peerNeed.tag) fs.writeSync(files.peerFd, makePattern(fileLen, peerNeed.tag, 0), 0, fileLen, 0);
    }

    // --- map and fault every page in, observing whether a PMD fault happened
    try {
      mapping = new native.Mapping(files.fd, fileLen, 0, c.mapping.sharing, PMD_SIZE);
    } catch (e) {
      obs.map = failure(e);
      return obs;
    }
    const ino = native.statx(files.path).ino;
    await pmdProbe.begin(mapping, obs.daxVerified);
    const touched = mapping.touch(0, fileLen, PAGE);
    obs.pmd = await pmdProbe.end(mapping, ino, obs.daxVerified);
    if (touched.sigbus) obs.sigbus.push('fault-in');

    // What the pinned range may legitimately hold afterwards: its own bytes, the
    // bytes written through the pin or the mapping, and the peer's bytes when the op
    // copies or clones them in. Any other daxpin-tagged bytes are another file's.
    const opWrites = files.peerTag && c.layoutOp.pinnedFileIs === 'dest' ? [files.peerTag] : [];
    const legit: ViewExpectation = { original: [fileTag], written: [writtenTag, ...opWrites] };

    // --- pin
    const pin = await startPin(c, mapping, pinOff, pinLen, peers, writtenTag, legit, opt);
    obs.pin = pin.result;
    obs.notes.push(...pin.notes);
    ring = pin.ring;
    aio = pin.aio;
    rdma = pin.rdma;
    pipeFds = pin.pipe;
    pinFd = pin.fd;
    const writtenBeforeOp: Tag[] = [];
    if (pin.result.ok && c.pinMethod.kind === 'vmsplice') {
      // Write through the mapping after vmsplice: if the pipe later shows these
      // bytes, it holds references to the pages rather than a copy.
      const w = mapping.write(pinOff, makePattern(pinLen, writtenTag, PIN_FIRST_PAGE));
      if (w.sigbus) obs.sigbus.push('write-after-pin');
      writtenBeforeOp.push(writtenTag);
    }
    if (!c.mapping.mappedDuringOp) mapping.unmap();

    // --- the op, concurrently with the held pin
    const steps = opSteps(c.layoutOp, files, opt);
    const opStart = performance.now();
    obs.op.started = true;
    let currentTid = 0;
    const opRun = (async (): Promise<Settled> => {
      let last: Settled = { result: OK, at: performance.now() };
      for (const step of steps) {
        const t = track(step());
        currentTid = t.call.tid;
        last = await t.settled;
        if (!last.result.ok) break;
      }
      // Mounted again at once: canaries, views and the next case need the filesystem.
      if (c.layoutOp.kind === 'umount' && last.result.ok) remount(opt, obs);
      if (c.layoutOp.kind === 'umount' && last.result.errno === 'EBUSY') obs.notes.push(`umount EBUSY; held by: ${holdersUnder(opt.mount!.target).join('; ') || 'no process'}`);
      return last;
    })();
    let opDone: Settled | null = null;
    opRun.then((s) => (opDone = s));

    // Hold until the op returns or holdMs passes, whichever is first: once the op
    // has returned while pinned, holding longer measures nothing more.
    const early = await within(opRun, opt.holdMs);
    if (early && pin.held) {
      // The op is done while the pin is still held: write canaries into whatever
      // it freed, so a block still referenced by the pin shows up as foreign data.
      await writeCanaries(files, opt, obs);
    }

    // --- release
    const releasedAt = performance.now();
    obs.release = await releasePin(c, pin, opt);
    if (pin.pipe && obs.release.ok) obs.views.pipe = pin.drained ?? 'n/a';

    // --- settle: give the op settleMs after the release
    if (!opDone) await within(opRun, opt.settleMs);
    if (!opDone) {
      const state = readTaskState(process.pid, currentTid);
      obs.op.taskState = state.state;
      obs.op.stack = state.stack;
      native.tgkill(currentTid, native.INTERRUPT_SIGNAL);
      await within(opRun, opt.signalWaitMs);
      obs.op.hung = (opDone ? 'interruptible' : 'uninterruptible') as HungState;
    }
    const settled = opDone as Settled | null;
    if (settled) {
      obs.op.ok = settled.result.ok;
      obs.op.errno = settled.result.errno;
      obs.op.returnedMs = round(settled.at - opStart);
      obs.op.blockedUntilRelease = settled.at >= releasedAt;
      obs.op.afterReleaseMs = settled.at >= releasedAt ? round(settled.at - releasedAt) : null;
    } else {
      opStuck = true;
      obs.retire = true;
      // Reading the file now could block this thread behind the stuck op.
      obs.notes.push('views not read: the op is stuck in the kernel');
      return obs;
    }

    // --- views, after everything has settled
    if (mapping.mapped) {
      const r = mapping.read(pinOff, pinLen);
      if (r.sigbus) obs.sigbus.push('buffer');
      obs.views.buffer = r.sigbus ? 'n/a' : classifyView(r.data, legit);
    }
    if (files.fd >= 0) obs.views.file = classifyView(preadAll(files.fd, pinOff, pinLen), legit);
    else if (c.layoutOp.kind === 'umount' && fs.existsSync(files.path)) {
      // The still-linked file after its eviction at unmount, read from the remounted filesystem.
      const fd = fs.openSync(files.path, fs.constants.O_RDONLY);
      try {
        obs.views.file = classifyView(preadAll(fd, pinOff, pinLen), legit);
      } finally {
        fs.closeSync(fd);
      }
    }
    if (files.peerFd !== null) {
      // The clone of the pinned file holds what the file held when it was cloned:
      // bytes written before the op, and the pin's bytes too if the op waited for the
      // release (the kernel broke the layout first, so the clone came after the I/O).
      // Pin bytes in a clone made while the pin was held are another file's data:
      // a write through a pin into a block the clone now shares.
      const clonedAfterRelease = obs.op.blockedUntilRelease ? [writtenTag] : [];
      const peerOriginal = c.layoutOp.pinnedFileIs === 'source' ? [fileTag, ...writtenBeforeOp, ...clonedAfterRelease] : [files.peerTag!];
      obs.views.peer = classifyView(preadAll(files.peerFd, pinOff, pinLen), { original: peerOriginal, written: [] });
    }
    if (files.canaries.length > 0) obs.views.canary = classifyCanaries(files);
    return obs;
  } finally {
    if (!opStuck) await cleanup(files, mapping, ring, aio, rdma, pipeFds, pinFd, obs);
  }
}

const round = (ms: number) => Math.round(ms * 10) / 10;

interface StartedPin {
  result: SyscallResult;
  /** true while the kernel holds references that only our release drops. */
  held: boolean;
  io: ReturnType<typeof track> | null;
  ring: RingHandle | null;
  aio: AioHandle | null;
  rdma: RdmaDeviceHandle | null;
  pipe: [number, number] | null;
  fd: number | null;
  drained?: ViewClass;
  /** The pipe references the file's pages, so it may hold what the file may hold. */
  legit: ViewExpectation;
  /** The I/O peer holding an O_DIRECT pin. */
  peer: PeerClient | null;
  notes: string[];
}

async function startPin(
  c: Case,
  m: MappingHandle,
  off: number,
  len: number,
  peers: PinPeers,
  writtenTag: Tag,
  legit: ViewExpectation,
  opt: TimelineOptions,
): Promise<StartedPin> {
  const pin: StartedPin = { result: OK, held: false, io: null, ring: null, aio: null, rdma: null, pipe: null, fd: null, legit, peer: null, notes: [] };
  const kind = c.pinMethod.kind;
  try {
    if (c.pinMethod.io) return await startIoPin(pin, c.pinMethod.io, m, off, len, peers, writtenTag, opt);
    switch (kind) {
      case 'none':
        return pin;
      case 'uring-fixed':
        pin.ring = new native.Ring();
        pin.ring.registerBuffers(m, off, len);
        pin.held = true;
        return pin;
      case 'vmsplice':
        pin.pipe = native.pipe(Math.max(len, 65536));
        native.vmsplice(pin.pipe[1], m, off, len);
        pin.held = true;
        return pin;
      case 'rdma-mr':
      case 'rdma-mr-odp': {
        const rdma = peers.rdma();
        if (!rdma.ok) throw new Error(rdma.reason);
        pin.rdma = new native.RdmaDevice!(rdma.device);
        const caps = pin.rdma.odpCaps();
        if (kind === 'rdma-mr-odp') pin.notes.push(`device ${rdma.device} ODP caps ${caps ? `general 0x${caps.general.toString(16)} rc 0x${caps.rc.toString(16)}` : 'unknown'}: ${odpOffered(caps) ? 'offered' : 'not offered'}`);
        pin.rdma.regMr(m, off, len, kind === 'rdma-mr-odp');
        pin.held = true;
        return pin;
      }
      default:
        throw new Error(`pin method ${c.pinMethod.name} has no start`);
    }
  } catch (e) {
    pin.result = failure(e);
    return pin;
  }
}

/** An O_DIRECT read/write of the peer's file or device, held until the peer answers. */
async function startIoPin(
  pin: StartedPin,
  io: PinIo,
  m: MappingHandle,
  off: number,
  len: number,
  peers: PinPeers,
  writtenTag: Tag,
  opt: TimelineOptions,
): Promise<StartedPin> {
  const peer = await peers.ioPeer(io.peer, opt);
  pin.peer = peer;
  const reading = io.direction === 'read';
  // Opened from the thread pool: the FUSE peer's requests for the open must not wait
  // on this thread. A plain fd, not a FileHandle: Node closes those on GC from this thread.
  pin.fd = await openAsync(peer.filePath, (reading ? fs.constants.O_RDONLY : fs.constants.O_WRONLY) | fs.constants.O_DIRECT);
  await peer.arm(writtenTag);
  const fileOffset = PIN_FIRST_PAGE * PAGE;
  switch (io.submit) {
    case 'syscall':
      pin.io = track(reading ? native.startRead(pin.fd, m, off, len) : native.startWrite(pin.fd, m, off, len));
      break;
    case 'uring':
      pin.ring = new native.Ring();
      pin.io = track(pin.ring.startIo(io.direction, pin.fd, m, off, len, fileOffset));
      break;
    case 'aio':
      pin.aio = new native.Aio();
      pin.io = track(pin.aio.startIo(io.direction, pin.fd, m, off, len, fileOffset));
      break;
  }
  // The kernel pins the pages before it sends the request: a held request is a held pin.
  const first = await Promise.race([peer.waitForRequest(Math.max(2000, opt.holdMs)), pin.io!.settled]);
  if (typeof first === 'object') {
    // The I/O finished (or failed) without ever reaching the peer: no pin was held.
    pin.result = first.result.ok ? { ok: false, errno: null } : first.result;
    pin.io = null;
  } else if (!first) {
    pin.result = { ok: false, errno: null };
  } else {
    pin.held = true;
  }
  return pin;
}

async function releasePin(c: Case, pin: StartedPin, opt: TimelineOptions): Promise<SyscallResult & { ms: number | null }> {
  if (!pin.held) return { ok: true, errno: null, ms: null };
  const t0 = performance.now();
  try {
    if (pin.peer) {
      // Answer the held request(s); the kernel completes the I/O and drops the pin.
      await pin.peer.releaseAll();
      const settled = await within(pin.io!.settled, Math.max(opt.settleMs, 1000));
      if (!settled) return { ok: false, errno: null, ms: null };
      return { ...settled.result, ms: round(settled.at - t0) };
    }
    switch (c.pinMethod.kind) {
      case 'uring-fixed':
        pin.ring!.unregisterBuffers();
        break;
      case 'vmsplice':
        pin.drained = classifyView(drainPipe(pin.pipe![0]), pin.legit);
        break;
      case 'rdma-mr':
      case 'rdma-mr-odp':
        pin.rdma!.deregMr();
        break;
    }
  } catch (e) {
    return { ...failure(e), ms: round(performance.now() - t0) };
  }
  return { ok: true, errno: null, ms: round(performance.now() - t0) };
}

/** Mounts the filesystem again after an umount op, as daxpin first mounted it. */
function remount(opt: TimelineOptions, obs: CaseObservation): void {
  const m = opt.mount!;
  try {
    native.mount(m.source, m.target, m.fsType, 0, m.data);
    fs.mkdirSync(opt.dir, { recursive: true });
  } catch (e) {
    obs.notes.push(`mount again after umount: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function drainPipe(fd: number): Buffer {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(65536);
  for (;;) {
    let n: number;
    try {
      n = fs.readSync(fd, buf, 0, buf.length, null);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') break;
      throw e;
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
    if (chunks.reduce((a, b) => a + b.length, 0) >= PIN_PAGES * PAGE) break;
  }
  return Buffer.concat(chunks);
}

// Views are read once the op has settled and the pin is released, on this thread:
// a thread-pool round trip per read cost more than the read.
function preadAll(fd: number, offset: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  return buf.subarray(0, fs.readSync(fd, buf, 0, length, offset));
}

// Few, large canary files: each file is an open, a write, a read and an unlink.
const CANARY_FILE = 256 * 1024;

async function writeCanaries(files: CaseFiles, opt: TimelineOptions, obs: CaseObservation): Promise<void> {
  if (opt.canaryBytes <= 0) return;
  // Freed extents become allocatable once the transaction that freed them commits.
  // syncfs through a file of the case: the worker keeps nothing open on the filesystem
  // between cases, so it can outlive the config (and the unmount).
  const dir = path.dirname(files.path);
  const heldFd = files.fd >= 0 ? files.fd : files.peerFd;
  const fd = heldFd ?? fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    await within(native.startSyncfs(fd).promise, 5000);
  } catch (e) {
    obs.notes.push(`syncfs: ${failure(e).errno}`);
  } finally {
    if (heldFd === null) fs.closeSync(fd);
  }
  for (let written = 0; written < opt.canaryBytes; written += CANARY_FILE) {
    const tag = newTag(ORIGINAL);
    const p = path.join(dir, `${path.basename(files.path)}.canary${files.canaries.length}`);
    let pattern: Buffer;
    try {
      // Synchronously: nothing else runs in the worker meanwhile (the FUSE peer is a
      // process of its own), and a thread-pool round trip per step cost more than the write.
      pattern = makePattern(CANARY_FILE, tag, 0);
      fs.writeFileSync(p, pattern, { flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOSPC') {
        files.canaries.push({ path: p, tag, length: 0, pattern: null });
        break;
      }
      throw e;
    }
    files.canaries.push({ path: p, tag, length: CANARY_FILE, pattern });
    obs.canary.files++;
    obs.canary.bytes += CANARY_FILE;
  }
}

function classifyCanaries(files: CaseFiles): ViewClass {
  const classes = new Set<ViewClass>();
  for (const c of files.canaries) {
    if (c.length === 0) continue;
    let data: Buffer | null = null;
    try {
      data = fs.readFileSync(c.path);
    } catch {
      // gone or unreadable: no view
    }
    classes.add(classifyView(data, { original: [c.tag], written: [] }, c.pattern ?? undefined));
  }
  if (classes.has('foreign')) return 'foreign';
  if (classes.size === 0) return 'n/a';
  return classes.size === 1 ? [...classes][0] : 'mixed';
}

async function cleanup(
  files: CaseFiles,
  mapping: MappingHandle | null,
  ring: RingHandle | null,
  aio: AioHandle | null,
  rdma: RdmaDeviceHandle | null,
  pipe: [number, number] | null,
  pinFd: number | null,
  obs: CaseObservation,
): Promise<void> {
  if (mapping?.mapped) mapping.unmap();
  ring?.close();
  rdma?.close();
  if (aio && (await within(aio.close().promise.then(() => true, () => true), 5000)) === null) {
    // io_destroy waits for a request its peer never answered: this worker cannot go on.
    obs.retire = true;
    obs.notes.push('io_destroy did not return: an AIO request is still in flight');
  }
  if (files.freezeFd !== undefined) {
    // A freeze whose thaw did not run (or failed) must not outlive the case.
    await within(native.startThaw(files.freezeFd).promise.catch(() => undefined), 5000);
    fs.closeSync(files.freezeFd);
  }
  if (pipe) {
    fs.closeSync(pipe[0]);
    fs.closeSync(pipe[1]);
  }
  // Closing the FUSE file sends FLUSH to the peer, and the last close of a DAX file
  // may wait for page references: close from blocking-call threads, not this one.
  for (const fd of [pinFd, files.fd, files.peerFd]) if (fd !== null && fd >= 0) await native.startClose(fd).promise.catch(() => undefined);
  // Unlinked here, synchronously: a case that cannot finish its clean-up is caught by
  // the orchestrator's case budget either way.
  for (const p of [files.path, files.peerPath, ...files.canaries.map((c) => c.path)]) {
    if (p) fs.rmSync(p, { force: true });
  }
}
