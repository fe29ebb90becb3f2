// Durable writes: every line reaches the disk before the next is written, so a killed
// run (or a panicked guest) leaves a file that is valid up to its last complete line.
// A write that fails half way (ENOSPC, EIO) is cut back to the last complete line, and
// the error names the file: the results written so far stay readable.
import fs from 'node:fs';
import { DaxpinError } from '../errors';

function why(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return 'its directory does not exist';
    case 'EISDIR':
      return 'it is a directory';
    case 'EEXIST':
      return 'it exists already (daxpin never appends to or overwrites a run file; give a new name)';
    case 'ENXIO':
      return 'it is a FIFO nobody reads';
    case 'ENOSPC':
      return 'no space left on the device';
    case 'EACCES':
    case 'EROFS':
    case 'EPERM':
      return `not writable (${code})`;
    default:
      return code ?? (err instanceof Error ? err.message : String(err));
  }
}

/** The DaxpinError for a file daxpin could not open or write (`what` says which step failed). */
export function writeError(file: string, err: unknown, what = 'write'): DaxpinError {
  return new DaxpinError('EWRITE', `cannot ${what} ${file}: ${why(err)}`);
}

/**
 * Opens `file` for writing without ever blocking in open(2) (a FIFO with no reader
 * fails with ENXIO instead of hanging where no signal can end it) and refuses anything
 * but a regular file: results belong in a file, not in a device or a pipe.
 */
function openRegular(file: string, flags: number): number {
  let fd: number;
  try {
    fd = fs.openSync(file, flags | fs.constants.O_RDWR | fs.constants.O_NONBLOCK, 0o644);
  } catch (err) {
    throw writeError(file, err, 'open');
  }
  const st = fs.fstatSync(fd);
  if (!st.isFile()) {
    fs.closeSync(fd);
    throw new DaxpinError('EWRITE', `cannot write ${file}: it is not a regular file`);
  }
  return fd;
}

/** Writes all of `buf` at the file's position (or at `at`), or throws (after a short write, too). */
function writeAll(fd: number, buf: Buffer, at?: number): void {
  let off = 0;
  while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off, at === undefined ? null : at + off);
}

/**
 * How a written line becomes durable. 'fsync': each line is fsync'd (a kernel panic
 * loses the page cache). 'written-through': the file lives on another machine that
 * has each write(2) once it returns (the VM runner's 9p results share, cache=none): a
 * guest crash loses nothing written, and an fsync there costs the host a disk flush
 * per record (~7 ms a case under TCG, bench/README.md).
 */
export type Durability = 'fsync' | 'written-through';

/** An append-only file of lines, each durable as written. */
export class DurableLines {
  private fd: number;
  private size: number;
  private written = 0;
  private failure: DaxpinError | null = null;

  /** `create`: the file must not exist yet; `append`: add to it (or create it). */
  constructor(
    readonly path: string,
    private readonly mode: 'create' | 'append',
    private readonly durability: Durability = 'fsync',
  ) {
    const flags = fs.constants.O_CREAT | fs.constants.O_APPEND | (mode === 'create' ? fs.constants.O_EXCL : 0);
    this.fd = openRegular(path, flags);
    this.size = fs.fstatSync(this.fd).size;
    if (mode === 'append' && this.size > 0 && !endsWithNewline(this.fd, this.size)) {
      // A torn line from a killed writer: the next record must start on a line of its own.
      this.size = this.cutTo(this.size - tornTail(this.fd, this.size));
    }
  }

  writeLine(line: string): void {
    if (this.failure) throw this.failure;
    if (this.fd < 0) return;
    const buf = Buffer.from(`${line}\n`);
    try {
      writeAll(this.fd, buf);
      if (this.durability === 'fsync') fs.fsyncSync(this.fd);
      this.size += buf.length;
      this.written++;
    } catch (err) {
      this.failure = writeError(this.path, err);
      this.abandon();
      throw this.failure;
    }
  }

  /** Closes the file; one daxpin made and never wrote a line to is removed (no 0-byte file is left). */
  close(): void {
    if (this.fd < 0) return;
    fs.closeSync(this.fd);
    this.fd = -1;
    if (this.mode === 'create' && this.written === 0) fs.rmSync(this.path, { force: true });
  }

  /** After a failed write: back to the last complete line, or no file at all if daxpin made it and wrote nothing. */
  private abandon(): void {
    try {
      this.cutTo(this.size);
    } catch {
      // the device refuses even that; the reader drops a torn last line
    }
    this.close();
  }

  private cutTo(size: number): number {
    fs.ftruncateSync(this.fd, size);
    return size;
  }
}

function endsWithNewline(fd: number, size: number): boolean {
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, size - 1);
  return b[0] === 0x0a;
}

/** Length of the unterminated tail of a file (bytes after its last newline). */
function tornTail(fd: number, size: number): number {
  const chunk = Buffer.alloc(64 * 1024);
  let end = size;
  while (end > 0) {
    const start = Math.max(0, end - chunk.length);
    fs.readSync(fd, chunk, 0, end - start, start);
    const i = chunk.subarray(0, end - start).lastIndexOf(0x0a);
    if (i >= 0) return size - (start + i + 1);
    end = start;
  }
  return size;
}

/**
 * A one-line marker another process reads (the case a guest is running), rewritten in
 * place: one pwrite at offset 0 padded with spaces to the longest text so far (the
 * reader trims), on a descriptor kept open. Over 9p under TCG each open, truncate and
 * close is a round trip to the host: rewriting the file whole cost ~30 ms a case.
 */
export class MarkerFile {
  private fd: number;
  private longest = 0;

  constructor(
    readonly path: string,
    private readonly durability: Durability,
  ) {
    this.fd = openRegular(path, fs.constants.O_CREAT | fs.constants.O_TRUNC);
  }

  set(text: string): void {
    this.longest = Math.max(this.longest, Buffer.byteLength(text));
    const buf = Buffer.from(text.padEnd(this.longest, ' '));
    try {
      writeAll(this.fd, buf, 0);
      if (this.durability === 'fsync') fs.fsyncSync(this.fd);
    } catch (err) {
      throw writeError(this.path, err);
    }
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

/** Replaces a small file's content and flushes it (a marker another process reads). */
export function writeFileSynced(file: string, text: string): void {
  const fd = openRegular(file, fs.constants.O_CREAT | fs.constants.O_TRUNC);
  try {
    writeAll(fd, Buffer.from(text));
    fs.fsyncSync(fd);
  } catch (err) {
    throw writeError(file, err);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Writes a whole file so that it appears complete or not at all: into a temp file
 * beside it, flushed, then renamed over `file`. A failure leaves no partial file.
 * Only a regular file is replaced: a device, FIFO or socket is refused (stdout is the
 * way to a pipe).
 */
export function replaceFileAtomically(file: string, text: string): void {
  let existing: fs.Stats | null = null;
  try {
    existing = fs.statSync(file);
  } catch {
    // a new file
  }
  if (existing?.isDirectory()) throw new DaxpinError('EWRITE', `cannot write ${file}: it is a directory`);
  if (existing && !existing.isFile()) {
    throw new DaxpinError('EWRITE', `cannot write ${file}: it is not a regular file (leave out --out to write to stdout)`);
  }
  const tmp = `${file}.daxpin-${process.pid}.tmp`;
  let fd: number;
  try {
    fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o644);
  } catch (err) {
    // Named by the file asked for: the temp file beside it is daxpin's business.
    throw writeError(file, err);
  }
  try {
    writeAll(fd, Buffer.from(text));
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, file);
  } catch (err) {
    try {
      fs.closeSync(fd);
    } catch {
      // closed already
    }
    fs.rmSync(tmp, { force: true });
    throw writeError(file, err);
  }
}
