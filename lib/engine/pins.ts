// The pin methods, one entry each: how the pin is made, what shows the kernel holds it,
// and how it is released. lib/cases/matrix.ts names a method's path; the timeline calls
// start() and release() and decides nothing else about the pin here.
import fs from 'node:fs';
import { PAGE, PIN_FIRST_PAGE, PinMethod, PinPath } from '../cases/matrix';
import { Tag } from '../cases/patterns';
import { PinResult, ReleaseResult } from '../outcome';
import { AioHandle, MappingHandle, RdmaDeviceHandle, RingHandle, monoMs, native } from '../native';
import { Tracked, failure, track } from './calls';
import { PinPeers } from './peers';
import { odpOffered } from './rdma';
import { within } from './time';

export interface PinContext {
  method: PinMethod;
  mapping: MappingHandle;
  /** The pinned range, in bytes of the mapping (and of the file: the mapping starts at 0). */
  offset: number;
  length: number;
  /** The I/O peers (FUSE, NBD) and the RDMA device. */
  peers: PinPeers;
  /** The bytes the peer answers a pinned read with. */
  writtenTag: Tag;
  /** How long to wait for the kernel to show the pin held. */
  startWaitMs: number;
  /** How long a released pin's I/O may take to complete. */
  completeWaitMs: number;
}

export interface HeldPin {
  result: PinResult;
  io: Tracked | null;
  ring: RingHandle | null;
  aio: AioHandle | null;
  rdma: RdmaDeviceHandle | null;
  pipe: [number, number] | null;
  /** The pipe's bytes, drained at the release (vmsplice). */
  drained: Buffer | null;
  /** What the pin's set-up showed beside its result (the device's ODP capabilities). */
  notes: string[];
}

interface PinDriver {
  start(ctx: PinContext, pin: HeldPin): Promise<void>;
  /** Drops the pin; returns what the pin's own completion returned. Called only when the pin is held. */
  release(ctx: PinContext, pin: HeldPin): Promise<Omit<ReleaseResult, 'ms'>>;
}

const OK = { ok: true, errno: null, result: null };

function held(pin: HeldPin, evidence: string): void {
  pin.result = { ok: true, errno: null, held: true, evidence };
}

/**
 * O_DIRECT I/O on the peer's FUSE file or NBD device: the kernel pins the pages, then
 * sends the request (FUSE) or submits bios that the NBD driver sends, and waits for the answer.
 */
function peerIo(submit: (ctx: PinContext, pin: HeldPin, fd: number) => Tracked): PinDriver {
  return {
    async start(ctx, pin) {
      const peer = ctx.peers.ioPeer(ctx.method.peer!);
      const fd = await peer.directFd();
      await peer.arm();
      pin.io = submit(ctx, pin, fd);
      // The kernel pins the pages before it sends the request: a held request is a held pin.
      const first = await Promise.race([peer.waitForRequest(ctx.startWaitMs), pin.io.settled]);
      if (first === null) {
        pin.result = { ok: false, errno: null, held: false, evidence: null };
      } else if ('result' in first) {
        // The I/O finished (or failed) without ever reaching the peer: no pin was held.
        pin.result = { ...(first.result.ok ? { ok: false, errno: null } : first.result), held: false, evidence: null };
        pin.io = null;
      } else {
        held(pin, `${ctx.method.peer} peer received ${first.kind} of ${first.size} bytes at ${first.offset}`);
      }
    },
    async release(ctx, pin) {
      // Answer the held request(s); the kernel completes the I/O and drops the pin.
      ctx.peers.ioPeer(ctx.method.peer!).release(ctx.writtenTag);
      const settled = await within(pin.io!.settled, ctx.completeWaitMs);
      if (!settled) return { ok: false, errno: null, result: null };
      return { ...settled.result, result: settled.ret };
    },
  };
}

const PIN_DRIVERS: Record<PinPath, PinDriver> = {
  none: {
    async start() {},
    async release() {
      return OK;
    },
  },
  odirect: peerIo((ctx, _pin, fd) => {
    const start = ctx.method.kernelWritesPages ? native.startRead : native.startWrite;
    return track(start(fd, ctx.mapping, ctx.offset, ctx.length, PIN_FIRST_PAGE * PAGE));
  }),
  uring: peerIo((ctx, pin, fd) => {
    pin.ring = new native.Ring();
    return track(pin.ring.startIo(ctx.method.kernelWritesPages ? 'read' : 'write', fd, ctx.mapping, ctx.offset, ctx.length, PIN_FIRST_PAGE * PAGE));
  }),
  aio: peerIo((ctx, pin, fd) => {
    pin.aio = new native.Aio();
    return track(pin.aio.startIo(ctx.method.kernelWritesPages ? 'read' : 'write', fd, ctx.mapping, ctx.offset, ctx.length, PIN_FIRST_PAGE * PAGE));
  }),
  'uring-fixed': {
    async start(ctx, pin) {
      pin.ring = new native.Ring();
      pin.ring.registerBuffers(ctx.mapping, ctx.offset, ctx.length);
      held(pin, 'IORING_REGISTER_BUFFERS returned 0');
    },
    async release(_ctx, pin) {
      pin.ring!.unregisterBuffers();
      return OK;
    },
  },
  vmsplice: {
    async start(ctx, pin) {
      pin.pipe = native.pipe(Math.max(ctx.length, 65536));
      const n = native.vmsplice(pin.pipe[1], ctx.mapping, ctx.offset, ctx.length);
      // A short vmsplice holds only part of the range; what it took is the evidence.
      if (n > 0) held(pin, `vmsplice took ${n} of ${ctx.length} bytes`);
      else pin.result = { ok: false, errno: null, held: false, evidence: null };
    },
    async release(ctx, pin) {
      pin.drained = drainPipe(pin.pipe![0], ctx.length);
      return { ok: true, errno: null, result: pin.drained.length };
    },
  },
  'rdma-mr': rdmaRegistration(false),
  'rdma-mr-odp': rdmaRegistration(true),
};

/** ibv_reg_mr of the range on daxpin's soft-RoCE device: registered means held, until ibv_dereg_mr. */
function rdmaRegistration(onDemand: boolean): PinDriver {
  return {
    async start(ctx, pin) {
      const rdma = ctx.peers.rdma();
      if (!rdma.ok) throw new Error(rdma.reason);
      pin.rdma = new native.RdmaDevice!(rdma.device);
      if (onDemand) {
        const caps = pin.rdma.odpCaps();
        const shown = caps ? `general 0x${caps.general.toString(16)}, rc 0x${caps.rc.toString(16)}` : 'none reported';
        pin.notes.push(`${rdma.device} ODP capabilities: ${shown} (${odpOffered(caps) ? 'offered' : 'not offered'})`);
      }
      pin.rdma.regMr(ctx.mapping, ctx.offset, ctx.length, onDemand);
      held(pin, `ibv_reg_mr${onDemand ? ' with IBV_ACCESS_ON_DEMAND' : ''} returned a memory region`);
    },
    async release(_ctx, pin) {
      pin.rdma!.deregMr();
      return OK;
    },
  };
}

export async function startPin(ctx: PinContext): Promise<HeldPin> {
  const pin: HeldPin = {
    result: { ok: true, errno: null, held: false, evidence: null },
    io: null,
    ring: null,
    aio: null,
    rdma: null,
    pipe: null,
    drained: null,
    notes: [],
  };
  try {
    await PIN_DRIVERS[ctx.method.path].start(ctx, pin);
  } catch (e) {
    pin.result = { ...failure(e), held: false, evidence: null };
  }
  return pin;
}

export async function releasePin(ctx: PinContext, pin: HeldPin): Promise<ReleaseResult> {
  if (!pin.result.held) return { ok: true, errno: null, ms: null, result: null };
  const t0 = monoMs();
  try {
    const r = await PIN_DRIVERS[ctx.method.path].release(ctx, pin);
    return { ...r, ms: round(monoMs() - t0) };
  } catch (e) {
    return { ...failure(e), ms: round(monoMs() - t0), result: null };
  }
}

/** Frees what the pin used; false when that could not finish (an AIO request still in flight). */
export async function closePin(pin: HeldPin): Promise<boolean> {
  pin.ring?.close();
  pin.rdma?.close();
  // io_destroy waits for a request its peer never answered: bounded, on a thread of its own.
  const aioClosed = pin.aio ? (await within(pin.aio.close().promise.then(() => true, () => true), 5000)) !== null : true;
  if (pin.pipe) {
    fs.closeSync(pin.pipe[0]);
    fs.closeSync(pin.pipe[1]);
  }
  return aioClosed;
}

function drainPipe(fd: number, limit: number): Buffer {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(65536);
  let total = 0;
  while (total < limit) {
    let n: number;
    try {
      n = fs.readSync(fd, buf, 0, buf.length, null);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') break;
      throw e;
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
    total += n;
  }
  return Buffer.concat(chunks);
}

const round = (ms: number) => Math.round(ms * 10) / 10;
