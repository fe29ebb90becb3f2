// The I/O peer for O_DIRECT pins on a block device: an NBD device whose server is
// daxpin itself, over one end of a socketpair (the kernel holds the other). An
// O_DIRECT read()/write(), io_uring or AIO request on /dev/nbdN builds bios from the
// user pages (the mapping under test), and the block layer completes them, dropping
// the pins, only when this server replies. While armed it replies to READ/WRITE only
// when told to (as the FUSE peer does); unarmed it replies at once, so the kernel's
// own reads (a partition scan on open) never wait.
import fs from 'node:fs';
import net from 'node:net';
import { EventEmitter } from 'node:events';
import { execFileSync } from 'node:child_process';
import { BlockingCall, isSystemError, native } from '../native';
import { HeldRequest, ReadData } from './fuse';

const REQUEST_MAGIC = 0x25609513;
const REPLY_MAGIC = 0x67446698;
const REQUEST_HEADER = 28;
const REPLY_HEADER = 16;
export const NBD_CMD = { READ: 0, WRITE: 1, DISC: 2, FLUSH: 3, TRIM: 4 } as const;
const EINVAL = 22;
const BLOCK_SIZE = 4096;
/** The device's size: large enough for any offset a case reads at. */
const DEVICE_BLOCKS = (64 * 1024 * 1024) / BLOCK_SIZE;

export interface NbdRequest {
  type: number;
  /** The request's handle, echoed in the reply (8 opaque bytes). */
  handle: Buffer;
  offset: number;
  length: number;
  /** WRITE: the bytes the kernel sent, copied from the pinned pages. */
  payload: Buffer | null;
}

/** Splits the kernel's byte stream into requests (a WRITE's payload follows its header). */
export class NbdRequestParser {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): NbdRequest[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: NbdRequest[] = [];
    for (;;) {
      if (this.pending.length < REQUEST_HEADER) break;
      const magic = this.pending.readUInt32BE(0);
      if (magic !== REQUEST_MAGIC) throw new Error(`NBD request with bad magic 0x${magic.toString(16)}`);
      // The upper 16 bits of the type word are command flags (FUA).
      const type = this.pending.readUInt32BE(4) & 0xffff;
      const length = this.pending.readUInt32BE(24);
      const payloadLength = type === NBD_CMD.WRITE ? length : 0;
      if (this.pending.length < REQUEST_HEADER + payloadLength) break;
      out.push({
        type,
        handle: Buffer.from(this.pending.subarray(8, 16)),
        offset: Number(this.pending.readBigUInt64BE(16)),
        length,
        payload: type === NBD_CMD.WRITE ? Buffer.from(this.pending.subarray(REQUEST_HEADER, REQUEST_HEADER + length)) : null,
      });
      this.pending = this.pending.subarray(REQUEST_HEADER + payloadLength);
    }
    return out;
  }
}

export function nbdReply(handle: Buffer, error: number, data?: Buffer): Buffer {
  const header = Buffer.alloc(REPLY_HEADER);
  header.writeUInt32BE(REPLY_MAGIC, 0);
  header.writeUInt32BE(error, 4);
  handle.copy(header, 8);
  return data ? Buffer.concat([header, data]) : header;
}

/**
 * The NBD request timeout, in whole seconds: longer than a request is ever held by
 * design (the wait for it to arrive, the hold, the settle after release), so the
 * kernel's timeout never ends a pin daxpin holds; it ends one a dead peer left behind.
 */
export function nbdTimeoutSeconds(holdMs: number, settleMs: number): number {
  const longestHoldMs = Math.max(2000, holdMs) + holdMs + settleMs;
  return Math.ceil(longestHoldMs / 1000) + 5;
}

/**
 * Whether this kernel can serve an NBD device: the module is loaded or loads. A
 * reason when not (natively on a kernel without nbd, the pins are not applicable).
 */
export function nbdSupport(): { ok: true } | { ok: false; reason: string } {
  if (fs.existsSync('/sys/module/nbd')) return { ok: true };
  let why = '';
  try {
    execFileSync('modprobe', ['nbd'], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
  } catch (e) {
    why = ((e as { stderr?: Buffer }).stderr?.toString() ?? '').trim().split('\n')[0] || (e as Error).message;
  }
  if (fs.existsSync('/sys/module/nbd')) return { ok: true };
  return { ok: false, reason: `no nbd module in kernel ${fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}${why ? ` (modprobe nbd: ${why})` : ''}` };
}

/** /dev/nbdN devices of this kernel, in order. */
function nbdDevices(): string[] {
  return fs
    .readdirSync('/sys/block')
    .filter((n) => /^nbd\d+$/.test(n))
    .sort((a, b) => Number(a.slice(3)) - Number(b.slice(3)))
    .map((n) => `/dev/${n}`);
}

export class NbdPeer extends EventEmitter {
  devicePath = '';
  private deviceFd = -1;
  private socket: net.Socket | null = null;
  private doIt: BlockingCall | null = null;
  private parser = new NbdRequestParser();
  private held: Array<HeldRequest & { handle: Buffer }> = [];
  private armed = false;
  private closed = false;
  readData: ReadData = (_o, size) => Buffer.alloc(size);

  constructor(private readonly timeoutSeconds: number) {
    super();
  }

  /** Connects the first free /dev/nbdN to this server. */
  async start(): Promise<void> {
    for (const dev of nbdDevices()) {
      // A connected device shows its server's pid; EBUSY below catches a race.
      if (fs.existsSync(`/sys/block/${dev.slice(5)}/pid`)) continue;
      const [mine, kernels] = native.socketpair();
      const fd = fs.openSync(dev, fs.constants.O_RDWR);
      try {
        native.nbdConfigure(fd, kernels, BLOCK_SIZE, DEVICE_BLOCKS, this.timeoutSeconds);
      } catch (e) {
        fs.closeSync(fd);
        fs.closeSync(mine);
        fs.closeSync(kernels);
        if (isSystemError(e) && e.code === 'EBUSY') continue;
        throw e;
      }
      // The kernel holds its own reference to its end now.
      fs.closeSync(kernels);
      this.deviceFd = fd;
      this.devicePath = dev;
      this.serve(mine);
      this.doIt = native.startNbdDoIt(fd);
      this.doIt.promise.then(
        () => this.gone(new Error(`${dev}: NBD_DO_IT returned`)),
        (e) => this.gone(e),
      );
      return;
    }
    throw new Error(`no free NBD device among ${nbdDevices().length}`);
  }

  /** From now on READ/WRITE requests are held until releaseAll(). */
  arm(): void {
    this.armed = true;
  }

  /** Answers every held request and disarms: the block layer completes the I/O and drops the pins. */
  releaseAll(): number {
    const held = this.held;
    this.held = [];
    this.armed = false;
    for (const r of held) this.answer(r);
    return held.length;
  }

  /** Disconnects: the kernel fails anything still held (EIO), which drops the pins. */
  async stop(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.socket?.destroy();
    if (this.doIt) await Promise.race([this.doIt.promise.catch(() => undefined), new Promise((r) => setTimeout(r, 5000).unref())]);
    if (this.deviceFd >= 0) fs.closeSync(this.deviceFd);
    this.deviceFd = -1;
  }

  private gone(e: unknown): void {
    if (this.closed) return;
    this.emit('gone', e);
  }

  private serve(fd: number): void {
    const socket = new net.Socket({ fd, readable: true, writable: true });
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      let requests: NbdRequest[];
      try {
        requests = this.parser.push(chunk);
      } catch (e) {
        socket.destroy();
        return this.gone(e);
      }
      for (const r of requests) this.handle(r);
    });
    socket.on('error', (e) => this.gone(e));
    socket.on('close', () => this.gone(new Error(`${this.devicePath}: connection closed`)));
  }

  private handle(r: NbdRequest): void {
    switch (r.type) {
      case NBD_CMD.READ:
      case NBD_CMD.WRITE: {
        const held = {
          kind: r.type === NBD_CMD.READ ? ('read' as const) : ('write' as const),
          unique: 0n,
          handle: r.handle,
          offset: r.offset,
          size: r.length,
          payload: r.payload,
          arrivedAt: performance.now(),
        };
        if (!this.armed) return this.write(held.kind === 'read' ? nbdReply(r.handle, 0, Buffer.alloc(r.length)) : nbdReply(r.handle, 0));
        this.held.push(held);
        this.emit('held', held);
        return;
      }
      case NBD_CMD.DISC:
        this.socket?.end();
        return;
      case NBD_CMD.FLUSH:
      case NBD_CMD.TRIM:
        this.write(nbdReply(r.handle, 0));
        return;
      default:
        this.write(nbdReply(r.handle, EINVAL));
    }
  }

  private answer(r: HeldRequest & { handle: Buffer }): void {
    this.write(r.kind === 'read' ? nbdReply(r.handle, 0, this.readData(r.offset, r.size)) : nbdReply(r.handle, 0));
  }

  private write(b: Buffer): void {
    if (this.socket && !this.socket.destroyed) this.socket.write(b);
  }
}
