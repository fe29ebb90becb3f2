// Durable writes: every line reaches the disk before the next is written, so a killed
// run (or a panicked guest) leaves a file that is valid up to its last complete line.
import fs from 'node:fs';

/** An append-only file of lines, each fsync'd as written. */
export class DurableLines {
  private fd: number;

  /** `create`: the file must not exist yet ('wx'); `append`: add to it ('a'). */
  constructor(
    readonly path: string,
    mode: 'create' | 'append',
  ) {
    this.fd = fs.openSync(path, mode === 'create' ? 'wx' : 'a');
  }

  writeLine(line: string): void {
    if (this.fd < 0) return;
    fs.writeSync(this.fd, `${line}\n`);
    fs.fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

/** Replaces a small file's content and flushes it (a marker another process reads). */
export function writeFileSynced(file: string, text: string): void {
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
