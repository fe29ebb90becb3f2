// Following the JSONL a guest appends on the results share, line by line as it grows.
import * as fs from 'node:fs';

/** Reads the complete lines appended to a file since the last poll. */
export class LineTailer {
  private offset = 0;
  private partial = '';

  constructor(readonly file: string) {}

  /** New complete lines (without the newline). */
  poll(): string[] {
    let fd: number;
    try {
      fd = fs.openSync(this.file, 'r');
    } catch {
      return [];
    }
    const chunks: string[] = [];
    try {
      const buf = Buffer.alloc(1 << 20);
      for (;;) {
        const n = fs.readSync(fd, buf, 0, buf.length, this.offset);
        if (n <= 0) break;
        this.offset += n;
        chunks.push(buf.toString('utf8', 0, n));
      }
    } finally {
      fs.closeSync(fd);
    }
    const lines = (this.partial + chunks.join('')).split('\n');
    this.partial = lines.pop() ?? '';
    return lines.filter((l) => l.trim() !== '');
  }

  /** A last line without its newline (a write the guest did not finish). */
  get torn(): string {
    return this.partial;
  }
}
