// The C baseline (bench/baseline.c) as a long-lived child: one case id in, one
// timing line out, so its process start is never counted.
import { ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import readline from 'node:readline';

export interface BaselineCase {
  caseId: string;
  ms: number;
  canaryFiles: number;
  views: string;
}

export class BaselineServer {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly waiting: Array<(line: string | null) => void> = [];
  private stderr = '';

  /** `results`: where the baseline appends and fsyncs a line per case, as daxpin does its JSONL. */
  constructor(binary: string, dir: string, holdMs: number, canaryBytes: number, results: string) {
    this.child = spawn(binary, [dir, String(holdMs), String(canaryBytes), results], { stdio: ['pipe', 'pipe', 'pipe'] });
    readline.createInterface({ input: this.child.stdout }).on('line', (l) => this.waiting.shift()?.(l));
    this.child.stderr.on('data', (d) => (this.stderr += String(d)));
    this.child.on('exit', () => {
      for (const w of this.waiting.splice(0)) w(null);
    });
  }

  run(caseId: string): Promise<BaselineCase> {
    return new Promise((resolve, reject) => {
      this.waiting.push((line) => {
        if (line === null) return reject(new Error(`baseline exited: ${this.stderr.trim()}`));
        const [id, us, canaries, views] = line.split(' ');
        if (id !== caseId || us === 'error') return reject(new Error(`baseline: ${line}`));
        resolve({ caseId, ms: Number(us) / 1000, canaryFiles: Number(canaries), views });
      });
      this.child.stdin.write(`${caseId}\n`);
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null) return resolve();
      this.child.once('exit', () => resolve());
      this.child.stdin.end();
    });
  }
}
