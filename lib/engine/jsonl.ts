// JSONL output: one line per record, appended and flushed as soon as it exists,
// so a killed run's file is valid up to its last complete line.
import fs from 'node:fs';
import { RunLine } from '../outcome';

export class JsonlWriter {
  private fd: number;

  constructor(readonly path: string) {
    this.fd = fs.openSync(path, 'a');
  }

  write(line: RunLine): void {
    fs.writeSync(this.fd, `${JSON.stringify(line)}\n`);
    fs.fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}
