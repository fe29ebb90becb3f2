// The I/O peer for O_DIRECT pins: a one-file FUSE filesystem served by daxpin
// itself over /dev/fuse. The file is opened with FOPEN_DIRECT_IO, so a read() or
// write() on it pins the user pages (the mapping under test) and waits until this
// server replies. The server replies to READ/WRITE only when told to: that is how
// a pin is held for a controlled time and released on command.
import fs from 'node:fs';
import { EventEmitter } from 'node:events';
import { MS_NODEV, MS_NOSUID, MNT_DETACH, MNT_FORCE, native } from '../native';
import { within } from './time';

const OP = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FLUSH: 25,
  INIT: 26,
  INTERRUPT: 36,
  DESTROY: 38,
  BATCH_FORGET: 42,
} as const;

const IN_HEADER = 40;
const OUT_HEADER = 16;
const FUSE_BIG_WRITES = 1 << 5;
const FUSE_MAX_PAGES = 1 << 22;
const FOPEN_DIRECT_IO = 1 << 0;
const MAX_WRITE = 128 * 1024;
const ROOT_INO = 1;
const FILE_INO = 2;
/** The served file's size: large enough for any offset a case reads at. */
const FILE_SIZE = 1 << 30;
const ENOENT = 2;
const ENOSYS = 38;
export const PEER_FILE_NAME = 'peer';

export interface HeldRequest {
  kind: 'read' | 'write';
  unique: bigint;
  offset: number;
  size: number;
  /** For writes: the payload as the kernel copied it from the pinned pages. */
  payload: Buffer | null;
  arrivedAt: number;
}

/** Supplies the bytes a held READ is answered with. */
export type ReadData = (offset: number, size: number) => Buffer;

export class FusePeer extends EventEmitter {
  readonly mountPoint: string;
  readonly filePath: string;
  private fd = -1;
  private buf = Buffer.alloc(MAX_WRITE + 64 * 1024);
  private held: HeldRequest[] = [];
  private closed = false;
  readData: ReadData = (_o, size) => Buffer.alloc(size);

  constructor(mountPoint: string) {
    super();
    this.mountPoint = mountPoint;
    this.filePath = `${mountPoint}/${PEER_FILE_NAME}`;
  }

  /** Mounts the filesystem and starts serving. Resolves once INIT has been answered. */
  async start(): Promise<void> {
    this.fd = fs.openSync('/dev/fuse', 'r+');
    native.mount('daxpin', this.mountPoint, 'fuse', MS_NOSUID | MS_NODEV, `fd=${this.fd},rootmode=40000,user_id=0,group_id=0,allow_other`);
    const initialised = new Promise<void>((resolve) => this.once('init', resolve));
    this.readNext();
    await initialised;
  }

  /** Answers every held request: the kernel then completes the I/O and drops the pins. */
  releaseAll(): number {
    const held = this.held;
    this.held = [];
    for (const r of held) {
      if (r.kind === 'read') this.reply(r.unique, 0, this.readData(r.offset, r.size));
      else {
        const out = Buffer.alloc(8);
        out.writeUInt32LE(r.size, 0);
        this.reply(r.unique, 0, out);
      }
    }
    return held.length;
  }

  /** Unmounts (lazily) and closes the device: the kernel aborts anything still held. */
  async stop(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // MNT_FORCE makes FUSE abort the connection: held requests fail, pins drop, and
    // our own pending read of /dev/fuse returns (closing the fd alone would not end it).
    for (const flags of [MNT_FORCE, MNT_DETACH]) {
      try {
        await within(native.startUmount(this.mountPoint, flags).promise, 5000);
      } catch {
        // EBUSY for the forced umount is expected: the abort has happened by then.
      }
    }
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }

  private readNext(): void {
    if (this.closed) return;
    fs.read(this.fd, this.buf, 0, this.buf.length, null, (err, n) => {
      if (this.closed) return;
      if (err) {
        // ENOENT: a request was interrupted before we read it; ENODEV: unmounted.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'EINTR') return this.readNext();
        this.emit('gone', err);
        return;
      }
      this.handle(Buffer.from(this.buf.subarray(0, n)));
      this.readNext();
    });
  }

  private handle(req: Buffer): void {
    const opcode = req.readUInt32LE(4);
    const unique = req.readBigUInt64LE(8);
    const nodeid = req.readBigUInt64LE(16);
    const body = req.subarray(IN_HEADER);
    switch (opcode) {
      case OP.INIT: {
        const major = body.readUInt32LE(0);
        const kernelFlags = body.readUInt32LE(12);
        const out = Buffer.alloc(64);
        out.writeUInt32LE(major, 0);
        out.writeUInt32LE(31, 4); // protocol minor we speak; every kernel daxpin targets knows it
        out.writeUInt32LE(0, 8); // max_readahead
        out.writeUInt32LE(kernelFlags & (FUSE_BIG_WRITES | FUSE_MAX_PAGES), 12);
        out.writeUInt16LE(16, 16); // max_background
        out.writeUInt16LE(12, 18); // congestion_threshold
        out.writeUInt32LE(MAX_WRITE, 20);
        out.writeUInt32LE(1, 24); // time_gran
        out.writeUInt16LE(MAX_WRITE / 4096, 28); // max_pages
        this.reply(unique, 0, out);
        this.emit('init');
        return;
      }
      case OP.LOOKUP: {
        const name = body.subarray(0, body.indexOf(0)).toString();
        if (nodeid !== BigInt(ROOT_INO) || name !== PEER_FILE_NAME) return this.reply(unique, -ENOENT);
        const out = Buffer.alloc(40 + 88);
        out.writeBigUInt64LE(BigInt(FILE_INO), 0);
        out.writeBigUInt64LE(3600n, 16); // entry_valid
        out.writeBigUInt64LE(3600n, 24); // attr_valid
        writeAttr(out, 40, FILE_INO);
        return this.reply(unique, 0, out);
      }
      case OP.GETATTR: {
        const out = Buffer.alloc(16 + 88);
        out.writeBigUInt64LE(3600n, 0);
        writeAttr(out, 16, Number(nodeid));
        return this.reply(unique, 0, out);
      }
      case OP.OPEN: {
        const out = Buffer.alloc(16);
        out.writeBigUInt64LE(1n, 0);
        out.writeUInt32LE(FOPEN_DIRECT_IO, 8);
        return this.reply(unique, 0, out);
      }
      case OP.READ:
      case OP.WRITE: {
        const offset = Number(body.readBigUInt64LE(8));
        const size = body.readUInt32LE(16);
        const held: HeldRequest = {
          kind: opcode === OP.READ ? 'read' : 'write',
          unique,
          offset,
          size,
          payload: opcode === OP.WRITE ? Buffer.from(body.subarray(40, 40 + size)) : null,
          arrivedAt: performance.now(),
        };
        this.held.push(held);
        this.emit('held', held);
        return;
      }
      case OP.STATFS: {
        const out = Buffer.alloc(80);
        out.writeUInt32LE(4096, 40); // bsize
        out.writeUInt32LE(255, 44); // namelen
        out.writeUInt32LE(4096, 48); // frsize
        return this.reply(unique, 0, out);
      }
      case OP.RELEASE:
      case OP.FLUSH:
      case OP.DESTROY:
        return this.reply(unique, 0);
      case OP.FORGET:
      case OP.BATCH_FORGET:
      case OP.INTERRUPT:
        // No reply is expected. A held request stays held until released: the
        // point of the peer is that only daxpin decides when I/O completes.
        return;
      default:
        return this.reply(unique, -ENOSYS);
    }
  }

  private reply(unique: bigint, error: number, body?: Buffer): void {
    if (this.fd < 0) return;
    const header = Buffer.alloc(OUT_HEADER);
    const len = OUT_HEADER + (body ? body.length : 0);
    header.writeUInt32LE(len, 0);
    header.writeInt32LE(error, 4);
    header.writeBigUInt64LE(unique, 8);
    try {
      fs.writeSync(this.fd, body ? Buffer.concat([header, body]) : header);
    } catch (e) {
      // ENOENT: the request was aborted (its caller got a fatal signal) before we answered.
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
}

function writeAttr(out: Buffer, at: number, ino: number): void {
  const isRoot = ino === ROOT_INO;
  out.writeBigUInt64LE(BigInt(ino), at);
  out.writeBigUInt64LE(BigInt(isRoot ? 0 : FILE_SIZE), at + 8);
  out.writeBigUInt64LE(BigInt(isRoot ? 0 : FILE_SIZE / 512), at + 16);
  out.writeUInt32LE(isRoot ? 0o40755 : 0o100666, at + 60); // mode
  out.writeUInt32LE(isRoot ? 2 : 1, at + 64); // nlink
  out.writeUInt32LE(4096, at + 80); // blksize
}
