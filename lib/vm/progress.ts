// What `daxpin vm` tells the person watching. On a terminal: one live status line per
// running guest (kernel, config, case n/N, elapsed, ETA) below the messages, and only
// the cases worth a look (a violation, a crash) as lines of their own. Elsewhere (a log
// file, CI): a line per case, as it is recorded.

export interface GuestStatus {
  release: string;
  /** What the guest is at: `boot 2`, or the config of its last case. */
  at: string;
  done: number;
  total: number;
  startedAt: number;
}

export function formatElapsed(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

/** The rest of a guest's run at the pace so far; null before its first case. */
export function etaMs(elapsedMs: number, done: number, total: number): number | null {
  if (done <= 0 || done > total) return null;
  return (elapsedMs / done) * (total - done);
}

export function statusLine(s: GuestStatus, now: number): string {
  const elapsed = now - s.startedAt;
  const eta = etaMs(elapsed, s.done, s.total);
  return `${s.release}  ${s.at}  case ${s.done}/${s.total}  ${formatElapsed(elapsed)}  ETA ${eta === null ? '?' : formatElapsed(eta)}`;
}

export interface ProgressStream {
  write(text: string): unknown;
}

/** How often the status lines are redrawn (elapsed and ETA move on their own). */
const REDRAW_MS = 1000;

export class VmProgress {
  private readonly guests = new Map<string, GuestStatus>();
  /** Status lines on screen now, below the last message. */
  private shown = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly out: ProgressStream,
    readonly live: boolean,
  ) {}

  /** A message line: above the status lines on a terminal. */
  log(line: string): void {
    this.clear();
    this.out.write(`${line}\n`);
    this.draw();
  }

  start(release: string, total: number): void {
    this.guests.set(release, { release, at: 'starting', done: 0, total, startedAt: Date.now() });
    if (this.live && this.timer === null) {
      this.timer = setInterval(() => this.redraw(), REDRAW_MS);
      this.timer.unref();
    }
    this.redraw();
  }

  boot(release: string, boot: number): void {
    const g = this.guests.get(release);
    if (g) g.at = `boot ${boot}`;
    this.redraw();
  }

  /** A recorded case; `line` is printed unless the terminal shows the count and the case is unremarkable. */
  caseDone(release: string, config: string, done: number, line: string, remarkable: boolean): void {
    const g = this.guests.get(release);
    if (g) Object.assign(g, { at: config, done });
    if (!this.live || remarkable) this.log(line);
    else this.redraw();
  }

  finish(release: string): void {
    this.guests.delete(release);
    this.redraw();
    if (this.guests.size === 0 && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  private redraw(): void {
    this.clear();
    this.draw();
  }

  private clear(): void {
    if (!this.live || this.shown === 0) return;
    // Up to the first status line, then erase to the end of the screen.
    this.out.write(`\x1b[${this.shown}F\x1b[J`);
    this.shown = 0;
  }

  private draw(): void {
    if (!this.live) return;
    const now = Date.now();
    const lines = [...this.guests.values()].map((g) => statusLine(g, now));
    if (lines.length > 0) this.out.write(`${lines.join('\n')}\n`);
    this.shown = lines.length;
  }
}
