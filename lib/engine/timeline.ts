// One case, start to end, inside a worker process:
//   create a patterned file -> map -> fault in -> pin -> (unmap) -> start the op
//   -> hold, sampling the op's thread -> (canaries) -> release -> settle -> (signal)
//   -> read views -> clean up.
// Every value returned is an observation; nothing is decided here about whether it is
// right. Times come from the op's own thread (syscall entry and return, CLOCK_MONOTONIC).
import fs from 'node:fs';
import path from 'node:path';
import { randomInt } from 'node:crypto';
import { Case, LayoutOp, PAGE, PIN_FIRST_PAGE, PIN_PAGES, PMD_FILE_PAGES, PMD_SIZE, PTE_FILE_PAGES } from '../cases/matrix';
import { ORIGINAL, Tag, ViewExpectation, ViewReading, WRITTEN, fillPattern, makePattern, readView, tagKey } from '../cases/patterns';
import { FileFacts, SyscallResult, ViewClass, ViewDetail, ViewName, notStartedOp } from '../outcome';
import {
  BlockingCall,
  FALLOC_FL_COLLAPSE_RANGE,
  FALLOC_FL_INSERT_RANGE,
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  FALLOC_FL_ZERO_RANGE,
  FS_XFLAG_DAX,
  FS_XFLAG_EXTSIZE,
  MappingHandle,
  isDax,
  monoMs,
  native,
} from '../native';
import { Settled, failure, track } from './calls';
import { HoldPolicy, ThreadSample, asleepSince, hungAfterSignal, isAsleep, lastWait, shouldRelease, stackDue } from './hold';
import { HeldPin, PinContext, closePin, releasePin, startPin } from './pins';
import { PinPeers } from './peers';
import { PmdProbe } from './pmd';
import { CaseObservation, TimelineOptions } from './protocol';
import { holdersUnder, parseStack, parseStatState } from './tasks';
import { sleep, within } from './time';

const OK = { ok: true, errno: null };
const NA_VIEWS = { buffer: 'n/a', pipe: 'n/a', file: 'n/a', peer: 'n/a', canary: 'n/a' } as const;

function newTag(gen: number, fileId = randomInt(1, 0x7fffffff)): Tag {
  return { fileId, gen };
}

/** How often the op's thread is looked at while the pin is held. */
const SAMPLE_MS = 2;

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
  canaries: Array<{ path: string; tag: Tag; length: number }>;
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

/** stat and FIEMAP of the pinned range; no FIEMAP_FLAG_SYNC: looking must not write the file back. */
function fileFacts(fd: number): FileFacts {
  const st = fs.fstatSync(fd);
  let extents: FileFacts['extents'] = null;
  try {
    extents = native.fiemap(fd, PIN_FIRST_PAGE * PAGE, PIN_PAGES * PAGE, false);
  } catch {
    // No FIEMAP on this filesystem (tmpfs): no extents to report.
  }
  return { size: st.size, blocks: st.blocks, extents };
}

/** lstat of a path: is it there (what an unlink did, seen rather than taken from its return value). */
function lookUp(p: string): SyscallResult {
  try {
    fs.lstatSync(p);
    return OK;
  } catch (e) {
    return failure(e);
  }
}

/**
 * One look at a thread: is it inside its call, in which state; wchan and stack only when
 * it sleeps there and `withStack` (see stackDue). The call's boundaries are read before
 * and after /proc: only a call that was in progress across both reads is the one /proc
 * saw (a thread that has just left its call sleeps in the pool's own wait).
 */
function sampleThread(tid: number, sinceMs: number, withStack = true): ThreadSample {
  const before = native.callPhase(tid);
  const base = `/proc/self/task/${tid}`;
  const stat = readOrNull(`${base}/stat`);
  const state = stat ? parseStatState(stat) : null;
  const sleeping = state === 'S' || state === 'D';
  const stack = withStack && before.enteredNs > 0 && before.exitedNs === 0 && sleeping ? readOrNull(`${base}/stack`) : null;
  const wchan = stack !== null ? readOrNull(`${base}/wchan`) : null;
  const after = native.callPhase(tid);
  const inCall = before.enteredNs > 0 && before.exitedNs === 0 && after.enteredNs === before.enteredNs && after.exitedNs === 0;
  return {
    atMs: monoMs() - sinceMs,
    inCall,
    state,
    wchan: inCall ? wchan || null : null,
    stack: inCall && stack !== null ? parseStack(stack) : null,
  };
}

function readOrNull(p: string): string | null {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return null;
  }
}

/**
 * Runs one case. `seq` makes file names unique within the worker's life; `onOpThread`
 * hears the thread of each op step as it starts (so a worker that stops answering can
 * be judged by that thread alone).
 */
export async function runTimeline(
  c: Case,
  opt: TimelineOptions,
  peers: PinPeers,
  pmdProbe: PmdProbe,
  seq: number,
  onOpThread: (tid: number) => void = () => undefined,
): Promise<CaseObservation> {
  const obs: CaseObservation = {
    daxVerified: false,
    pmd: null,
    map: OK,
    pin: { ok: true, errno: null, held: false, evidence: null },
    op: notStartedOp(),
    views: { ...NA_VIEWS },
    viewDetail: {},
    file: { before: null, after: null, pathAfter: null },
    sigbus: [],
    release: { ok: true, errno: null, ms: null, result: null },
    canary: { files: 0, bytes: 0, reusedPinnedBytes: null },
    retire: false,
    notes: [],
    unsupported: null,
  };
  // A pin or op that cannot exist here (no nbd module, no RDMA device, a filesystem
  // daxpin did not mount) is not applicable: nothing is measured.
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
  let pin: HeldPin | null = null;
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
    fs.writeSync(files.fd, scratchPattern(0, fileLen, fileTag), 0, fileLen, 0);
    obs.daxVerified = isDax(native.statx(files.path));

    const peerNeed = peerFor(c.layoutOp, fileTag);
    if (peerNeed.needed) {
      files.peerPath = `${base}.peer`;
      files.peerTag = peerNeed.tag;
      files.peerFd = fs.openSync(files.peerPath, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o644);
      if (peerNeed.tag) fs.writeSync(files.peerFd, scratchPattern(0, fileLen, peerNeed.tag), 0, fileLen, 0);
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
    const opWrites = files.peerTag && c.layoutOp.pinnedFileIs === 'dest' && files.peerTag !== fileTag ? [files.peerTag] : [];
    const legit: ViewExpectation = { original: [fileTag], written: [writtenTag], peer: opWrites };

    // --- pin
    const pinCtx: PinContext = {
      method: c.pinMethod,
      mapping,
      offset: pinOff,
      length: pinLen,
      peers,
      writtenTag,
      startWaitMs: Math.max(2000, opt.hold.holdMs),
      completeWaitMs: Math.max(opt.settleMs, 1000),
    };
    pin = await startPin(pinCtx);
    obs.pin = pin.result;
    obs.notes.push(...pin.notes);
    const writtenBeforeOp: Tag[] = [];
    if (pin.result.held && pin.pipe) {
      // Write through the mapping after vmsplice: if the pipe later shows these
      // bytes, it holds references to the pages rather than a copy.
      const w = mapping.write(pinOff, makePattern(pinLen, writtenTag, PIN_FIRST_PAGE));
      if (w.sigbus) obs.sigbus.push('write-after-pin');
      writtenBeforeOp.push(writtenTag);
    }
    obs.file.before = fileFacts(files.fd);
    if (!c.mapping.mappedDuringOp) mapping.unmap();

    // --- the op, concurrently with the held pin
    const op = await runOp(c, files, pin, pinCtx, opt, obs, onOpThread);
    if (!op.settled) {
      opStuck = true;
      obs.retire = true;
      // Reading the file now could block this thread behind the stuck op.
      obs.notes.push('views not read: the op is stuck in the kernel');
      return obs;
    }

    // --- views, after everything has settled
    const sources = tagSources(files);
    const record = (name: ViewName, r: ViewReading, pages = PIN_PAGES) => {
      obs.views[name] = r.class;
      const d = detail(r, sources, pages);
      if (d) obs.viewDetail[name] = d;
    };
    if (pin.drained) record('pipe', readView(pin.drained, legit, PIN_FIRST_PAGE));
    if (mapping.mapped) {
      const r = mapping.read(pinOff, pinLen);
      if (r.sigbus) obs.sigbus.push('buffer');
      else record('buffer', readView(r.data, legit, PIN_FIRST_PAGE));
    }
    obs.file.pathAfter = lookUp(files.path);
    if (files.fd >= 0) {
      record('file', readView(preadAll(files.fd, pinOff, pinLen), legit, PIN_FIRST_PAGE));
      obs.file.after = fileFacts(files.fd);
    } else if (c.layoutOp.kind === 'umount' && obs.file.pathAfter.ok) {
      // The still-linked file after its eviction at unmount, read from the filesystem mounted again.
      const fd = fs.openSync(files.path, fs.constants.O_RDONLY);
      try {
        record('file', readView(preadAll(fd, pinOff, pinLen), legit, PIN_FIRST_PAGE));
        obs.file.after = fileFacts(fd);
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
      record('peer', readView(preadAll(files.peerFd, pinOff, pinLen), { original: peerOriginal, written: [] }, PIN_FIRST_PAGE));
    }
    if (files.canaries.length > 0) readCanaries(files, obs, sources);
    return obs;
  } finally {
    if (!opStuck) await cleanup(files, mapping, pin, obs);
  }
}

interface OpRun {
  settled: Settled | null;
}

/**
 * Starts the op's steps, holds the pin while sampling the op's thread, releases on the
 * hold policy, gives the op settleMs, signals its thread if it is still in its call, and
 * fills obs.op, obs.release and the canaries. Returns how the op ended (null: stuck).
 */
async function runOp(
  c: Case,
  files: CaseFiles,
  pin: HeldPin,
  pinCtx: PinContext,
  opt: TimelineOptions,
  obs: CaseObservation,
  onOpThread: (tid: number) => void,
): Promise<OpRun> {
  const steps = opSteps(c.layoutOp, files, opt);
  const opStart = monoMs();
  let currentTid = 0;
  let firstEntered: number | null = null;
  obs.op.started = true;
  const opRun = (async (): Promise<Settled> => {
    let last: Settled = { result: OK, ret: null, aux: null, enteredMs: null, at: monoMs() };
    for (const step of steps) {
      const t = track(step());
      currentTid = t.call.tid;
      onOpThread(currentTid);
      last = await t.settled;
      firstEntered ??= last.enteredMs;
      if (!last.result.ok) break;
    }
    if (c.layoutOp.kind === 'umount') afterUmount(last, opt, obs);
    return last;
  })();
  let opDone: Settled | null = null;
  opRun.then((s) => (opDone = s));

  // --- hold: sample the op's thread until the policy says release
  const policy: HoldPolicy = opt.hold;
  const samples: ThreadSample[] = [];
  for (;;) {
    const s = sampleThread(currentTid, opStart, stackDue(samples));
    if (opDone === null) samples.push(s);
    if (shouldRelease(policy, monoMs() - opStart, opDone !== null, asleepSince(samples))) break;
    await Promise.race([opRun, sleep(SAMPLE_MS)]);
  }
  // The op is done while the pin is still held: write canaries into whatever it freed,
  // so a block still referenced by the pin shows up as foreign data.
  if (opDone !== null && pin.result.held) await writeCanaries(files, opt, obs);

  // --- release, with a last look at the op's thread right before it
  const atRelease = opDone === null ? sampleThread(currentTid, opStart) : null;
  if (atRelease) samples.push(atRelease);
  obs.op.asleepAtRelease = atRelease !== null && isAsleep(atRelease);
  obs.op.wait = lastWait(samples);
  const releasedAt = monoMs();
  obs.release = await releasePin(pinCtx, pin);

  // --- settle: give the op settleMs after the release; then signal its thread, only
  // while that thread is inside the op's call (an idle pool thread must not be hit).
  if (opDone === null) await within(opRun, opt.settleMs);
  if (opDone === null) {
    const s = sampleThread(currentTid, opStart);
    obs.op.taskState = s.state;
    obs.op.stack = s.stack;
    if (s.inCall) {
      obs.op.signalledAtMs = round(monoMs() - releasedAt);
      native.tgkill(currentTid, native.INTERRUPT_SIGNAL);
      await within(opRun, opt.signalWaitMs);
      const after = opDone as Settled | null;
      obs.op.hung = hungAfterSignal(after !== null, after?.result.errno ?? null);
    } else {
      await within(opRun, opt.signalWaitMs);
      if (opDone === null) obs.op.hung = 'uninterruptible';
    }
  }
  const settled = opDone as Settled | null;
  if (!settled) return { settled: null };
  obs.op.ok = settled.result.ok;
  obs.op.errno = settled.result.errno;
  obs.op.result = settled.result.ok ? settled.ret : null;
  if (c.layoutOp.kind === 'dedupe' && settled.result.ok) {
    obs.op.dedupe = { status: settled.aux === 0 ? 'same' : 'differs', bytesDeduped: settled.ret ?? 0 };
  }
  obs.op.returnedMs = round(settled.at - (firstEntered ?? opStart));
  const returnedAfterRelease = settled.at >= releasedAt;
  obs.op.blockedUntilRelease = pin.result.held && obs.op.asleepAtRelease && returnedAfterRelease;
  obs.op.afterReleaseMs = returnedAfterRelease ? round(settled.at - releasedAt) : null;
  return { settled };
}

const round = (ms: number) => Math.round(ms * 10) / 10;

/**
 * After an umount op: mount the filesystem again at once, as daxpin first mounted it
 * (canaries, views and the next case need it); when the kernel said EBUSY, note who
 * held the mount.
 */
function afterUmount(last: Settled, opt: TimelineOptions, obs: CaseObservation): void {
  const m = opt.mount!;
  if (last.result.errno === 'EBUSY') obs.notes.push(`umount EBUSY; held by: ${holdersUnder(m.target).join('; ') || 'no process'}`);
  if (!last.result.ok) return;
  try {
    native.mount(m.source, m.target, m.fsType, 0, m.data);
    fs.mkdirSync(opt.dir, { recursive: true });
  } catch (e) {
    obs.notes.push(`mount again after umount: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** Whose file each tag of the case belongs to, to name the source of foreign bytes. */
function tagSources(files: CaseFiles): Map<number, string> {
  const m = new Map<number, string>();
  for (const c of files.canaries) m.set(c.tag.fileId >>> 0, 'canary');
  if (files.peerTag) m.set(files.peerTag.fileId >>> 0, files.peerTag.fileId === files.fileTag.fileId ? 'file' : 'peer');
  m.set(files.fileTag.fileId >>> 0, 'file');
  return m;
}

function detail(r: ViewReading, sources: Map<number, string>, pages: number): ViewDetail | null {
  if (!r.description) return null;
  const { foreignTags, ...counts } = r.description.counts;
  const from = [...new Set(foreignTags.map((k) => sources.get(Number(k.split(':')[0])) ?? 'other'))].sort();
  return { pages: pages > 0 ? r.description.pages.padEnd(pages, '-') : '', counts, foreignFrom: from };
}

// Views are read once the op has settled and the pin is released, on this thread:
// a thread-pool round trip per read cost more than the read.
function preadAll(fd: number, offset: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  return buf.subarray(0, fs.readSync(fd, buf, 0, length, offset));
}

/** The whole file at `p` (at most buf.length bytes) read into buf. */
function readInto(buf: Buffer, p: string): Buffer {
  const fd = fs.openSync(p, fs.constants.O_RDONLY);
  try {
    let n = 0;
    for (let r = 1; r > 0 && n < buf.length; n += r) r = fs.readSync(fd, buf, n, buf.length - n, n);
    return buf.subarray(0, n);
  } finally {
    fs.closeSync(fd);
  }
}

// Two buffers the worker reuses for the patterns it writes and the canaries it reads
// back, each used and done with before the next case step: a fresh megabyte-sized
// Buffer per file cost its allocation and page faults every time.
const scratchBuffers: Buffer[] = [Buffer.alloc(0), Buffer.alloc(0)];

function scratch(slot: 0 | 1, length: number): Buffer {
  if (scratchBuffers[slot].length < length) scratchBuffers[slot] = Buffer.allocUnsafe(length);
  return scratchBuffers[slot].subarray(0, length);
}

/** A file's pattern of `tag` from page 0 in scratch buffer `slot` (valid until that slot's next use). */
function scratchPattern(slot: 0 | 1, length: number, tag: Tag): Buffer {
  return fillPattern(scratch(slot, length), tag, 0);
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
    try {
      // Synchronously: nothing else runs in the worker meanwhile (the FUSE peer is a
      // process of its own), and a thread-pool round trip per step cost more than the write.
      fs.writeFileSync(p, scratchPattern(0, CANARY_FILE, tag), { flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOSPC') {
        files.canaries.push({ path: p, tag, length: 0 });
        break;
      }
      throw e;
    }
    files.canaries.push({ path: p, tag, length: CANARY_FILE });
    obs.canary.files++;
    obs.canary.bytes += CANARY_FILE;
  }
}

/** Reads the canaries back: their class and detail, and how many of their bytes sit on blocks the pinned range had before the op. */
function readCanaries(files: CaseFiles, obs: CaseObservation, sources: Map<number, string>): void {
  const classes = new Set<ViewClass>();
  const counts = { original: 0, written: 0, peer: 0, shifted: 0, zero: 0, foreign: 0, garbage: 0 };
  const from = new Set<string>();
  const pinned = (obs.file.before?.extents ?? []).filter((e) => e.physical > 0);
  let reused: number | null = pinned.length > 0 ? 0 : null;
  for (const c of files.canaries) {
    if (c.length === 0) continue;
    let data: Buffer | null = null;
    try {
      data = readInto(scratch(1, c.length), c.path);
    } catch {
      // gone or unreadable: no view
    }
    const r = readView(data, { original: [c.tag], written: [] }, 0, scratchPattern(0, c.length, c.tag));
    classes.add(r.class);
    const d = detail(r, sources, 0);
    if (d) {
      for (const k of Object.keys(counts) as Array<keyof typeof counts>) counts[k] += d.counts[k];
      d.foreignFrom.forEach((f) => from.add(f));
    }
    if (reused !== null) reused = addReuse(reused, c.path, pinned);
  }
  obs.views.canary = classes.has('foreign') ? 'foreign' : classes.size === 0 ? 'n/a' : classes.size === 1 ? [...classes][0] : 'mixed';
  obs.viewDetail.canary = { pages: '', counts, foreignFrom: [...from].sort() };
  obs.canary.reusedPinnedBytes = reused;
}

/** Bytes of a canary whose physical extents overlap the pinned range's extents of before the op; null when unknown. */
function addReuse(sum: number | null, file: string, pinned: NonNullable<FileFacts['extents']>): number | null {
  if (sum === null) return null;
  let fd = -1;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY);
    // A canary's writeback changes nothing under test: FIEMAP_FLAG_SYNC gives its blocks their addresses.
    const extents = native.fiemap(fd, 0, CANARY_FILE, true);
    for (const e of extents) {
      for (const p of pinned) {
        const lo = Math.max(e.physical, p.physical);
        const hi = Math.min(e.physical + e.length, p.physical + p.length);
        if (hi > lo) sum += hi - lo;
      }
    }
    return sum;
  } catch {
    return null;
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
}

async function cleanup(files: CaseFiles, mapping: MappingHandle | null, pin: HeldPin | null, obs: CaseObservation): Promise<void> {
  if (mapping?.mapped) mapping.unmap();
  if (pin && !(await closePin(pin))) {
    obs.retire = true;
    obs.notes.push('the pin could not be closed (io_destroy did not return: an AIO request is still in flight)');
  }
  if (files.freezeFd !== undefined) {
    // A freeze whose thaw did not run (or failed) must not outlive the case (EINVAL: not frozen).
    await within(native.startThaw(files.freezeFd).promise.catch(() => undefined), 5000);
    fs.closeSync(files.freezeFd);
  }
  // The last close of a DAX file may wait for page references: close from
  // blocking-call threads, not this one; both at once (the pin is released by now).
  const fds = [files.fd, files.peerFd].filter((fd): fd is number => fd !== null && fd >= 0);
  await Promise.all(fds.map((fd) => native.startClose(fd).promise.catch(() => undefined)));
  // Unlinked here, synchronously: a case that cannot finish its clean-up is caught by
  // the orchestrator's case budget either way.
  for (const p of [files.path, files.peerPath, ...files.canaries.map((c) => c.path)]) {
    if (p) unlinkIfThere(p);
  }
}

/** unlink(2) alone: rmSync's lstat and retry loop cost more than the unlink of a case's file. */
function unlinkIfThere(p: string): void {
  try {
    fs.unlinkSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}
