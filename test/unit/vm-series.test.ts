// Issue 16 without a guest: which kernels `--kernel all` and `--kernel 6.12.*` name,
// how many guests share the host, what `daxpin kernels` and the progress lines say.
import t from 'tap';
import { ArchiveKernel, archiveKernelsFor, formatKernelListing, kernelSeries, parseKernelSpecs } from '../../lib/vm/kernels';
import { VmProgress, etaMs, statusLine } from '../../lib/vm/progress';
import { guestShape, inParallel } from '../../lib/vm/runner';

const ak = (release: string, version: string): ArchiveKernel => ({
  release,
  version,
  upstream: version.replace(/-[^-]*$/, ''),
  suites: ['trixie'],
  packages: [],
});
// Oldest first, as completeKernels sorts them; 6.12.90 twice (a rebuilt ABI).
const ARCHIVE = [
  ak('6.1.0-47-amd64', '6.1.170-3'),
  ak('6.1.0-50-amd64', '6.1.176-1'),
  ak('6.12.57+deb12-amd64', '6.12.57-1~bpo12+1'),
  ak('6.12.90+deb12-amd64', '6.12.90-1~bpo12+1'),
  ak('6.12.90+deb12.1-amd64', '6.12.90-2~bpo12+1'),
  ak('6.12.117+deb13-amd64', '6.12.117-1'),
  ak('7.3.4+deb13-amd64', '7.3.4-1~bpo13+1'),
];

t.test('all is the newest of every series; 6.12.* every package of one', async (t) => {
  t.equal(kernelSeries('6.12.117'), '6.12');
  t.equal(kernelSeries('6.12.90+deb12.1-amd64'), '6.12');
  t.same(archiveKernelsFor('all', ARCHIVE).map((k) => k.release), ['6.1.0-50-amd64', '6.12.117+deb13-amd64', '7.3.4+deb13-amd64']);
  t.same(archiveKernelsFor('6.12.*', ARCHIVE).map((k) => k.release), ['6.12.57+deb12-amd64', '6.12.90+deb12-amd64', '6.12.90+deb12.1-amd64', '6.12.117+deb13-amd64']);
  t.same(archiveKernelsFor('6.1.*', ARCHIVE).map((k) => k.release), ['6.1.0-47-amd64', '6.1.0-50-amd64'], '6.1.* is not 6.12');
  t.same(archiveKernelsFor('6.2.*', ARCHIVE), []);
  t.same(archiveKernelsFor('6.12', ARCHIVE).map((k) => k.release), ['6.12.117+deb13-amd64']);
  t.same(parseKernelSpecs(['all', '6.12.*']), [
    { spec: 'all', kind: 'all' },
    { spec: '6.12.*', kind: 'series' },
  ]);
  t.throws(() => parseKernelSpecs(['6.*']), /not a kernel spec/);
});

t.test('daxpin kernels: one line per series, newest first, cached marked', async (t) => {
  const lines = formatKernelListing({ available: ARCHIVE, cached: [{ release: '6.1.0-50-amd64', vmlinuz: '', modulesDir: null, origin: '' }], archiveError: null });
  t.match(lines[1], /^ {2}6\.1 +6\.1\.0-50-amd64\* \(6\.1\.176-1\), 6\.1\.0-47-amd64 \(6\.1\.170-3\)$/);
  t.match(lines[2], /^ {2}6\.12 +6\.12\.117\+deb13-amd64 \(6\.12\.117-1\), 6\.12\.90\+deb12\.1-amd64/);
  t.match(lines[3], /^ {2}7\.3 /);
  t.same(lines.slice(4), ['cached:', '  6.1.0-50-amd64']);
});

t.test('never more vCPUs than cores, never more guests than kernels', async (t) => {
  t.same(guestShape(2, 7, 1), { jobs: 1, cpus: 2 });
  t.same(guestShape(2, 7, 2), { jobs: 2, cpus: 1 });
  t.same(guestShape(2, 1, 2), { jobs: 1, cpus: 2 }, 'one kernel: one guest with both cores');
  t.same(guestShape(8, 7, 2), { jobs: 2, cpus: 2 }, 'a guest never gets more than 2');
  t.same(guestShape(1, 3), { jobs: 1, cpus: 1 });
  t.throws(() => guestShape(2, 7, 3), /--jobs must be between 1 and 2/);
  t.throws(() => guestShape(2, 7, 0), /--jobs/);
  for (let cores = 1; cores <= 16; cores++) {
    for (let kernels = 1; kernels <= 9; kernels++) {
      const s = guestShape(cores, kernels);
      t.ok(s.jobs * s.cpus <= cores && s.jobs <= kernels && s.jobs >= 1, `default shape fits ${cores} cores, ${kernels} kernels`);
    }
  }
});

t.test('guests in parallel: never more at once than jobs, results in order', async (t) => {
  let running = 0;
  let most = 0;
  const out = await inParallel([30, 10, 20, 5, 15], 2, async (ms) => {
    most = Math.max(most, ++running);
    await new Promise((r) => setTimeout(r, ms));
    running--;
    return ms * 2;
  });
  t.same(out, [60, 20, 40, 10, 30]);
  t.equal(most, 2);
});

t.test('status line and ETA', async (t) => {
  t.equal(etaMs(60_000, 0, 100), null);
  t.equal(etaMs(60_000, 25, 100), 180_000);
  t.equal(statusLine({ release: '7.3.4+deb13-amd64', at: 'xfs-dax', done: 25, total: 100, startedAt: 0 }, 60_000), '7.3.4+deb13-amd64  xfs-dax  case 25/100  1:00  ETA 3:00');
});

t.test('progress: a line per case off a terminal; on one, status lines and only remarkable cases', async (t) => {
  const plain: string[] = [];
  const p = new VmProgress({ write: (s: string) => plain.push(s) }, false);
  p.start('k', 2);
  p.caseDone('k', 'ext4-dax', 1, 'case one', false);
  p.log('message');
  p.finish('k');
  t.same(plain, ['case one\n', 'message\n']);

  let screen = '';
  const live = new VmProgress({ write: (s: string) => (screen += s) }, true);
  live.start('a', 10);
  live.start('b', 10);
  live.caseDone('a', 'xfs-dax', 1, 'quiet case', false);
  live.caseDone('b', 'ext4-dax', 1, 'VIOLATION case', true);
  live.finish('a');
  live.finish('b');
  t.notMatch(screen, /quiet case/);
  t.match(screen, /VIOLATION case\n/);
  t.match(screen, /a {2}xfs-dax {2}case 1\/10/);
  t.match(screen, /\x1b\[2F\x1b\[J/, 'the two status lines are erased before a message');
});
