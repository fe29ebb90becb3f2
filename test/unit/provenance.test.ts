// Provenance: what a run record says about the machine, read off it; and a guest
// boot's record, which says only what the guest alone sees.
import fs from 'node:fs';
import t from 'tap';
import { configLines, memmapRanges, readBootProvenance, readProvenance } from '../../lib/host/provenance';

t.test('configLines: set, not set, absent', async (t) => {
  const text = ['CONFIG_FS_DAX=y', '# CONFIG_KASAN is not set', 'CONFIG_XFS_FS=m', 'CONFIG_FS_DAX_PMD_X=y'].join('\n');
  t.same(configLines(text, ['CONFIG_FS_DAX', 'CONFIG_KASAN', 'CONFIG_XFS_FS', 'CONFIG_FS_DAX_PMD']), {
    CONFIG_FS_DAX: 'y',
    CONFIG_KASAN: 'is not set',
    CONFIG_XFS_FS: 'm',
    CONFIG_FS_DAX_PMD: 'absent',
  });
});

t.test('memmapRanges: the memmap=SIZE!START words of a command line', async (t) => {
  t.same(memmapRanges('console=ttyS0 memmap=1024M!4G memmap=2G!8G memmap=64M quiet'), ['1024M!4G', '2G!8G']);
  t.same(memmapRanges(null), []);
});

t.test("a boot record's provenance is the guest's own view, read off the running kernel", async (t) => {
  const boot = readBootProvenance('boot');
  t.same(Object.keys(boot).sort(), ['cmdline', 'kernelLogFrom', 'pmem', 'procVersion']);
  t.equal(boot.procVersion, fs.readFileSync('/proc/version', 'utf8').trim());
  t.equal(boot.cmdline, fs.readFileSync('/proc/cmdline', 'utf8').trim());
  t.equal(boot.kernelLogFrom, 'boot');
  t.same(
    boot.pmem.map((p) => p.device),
    fs.readdirSync('/sys/block').filter((n) => /^pmem\d+/.test(n)).map((n) => `/dev/${n}`),
  );
});

t.test('a run record has the tools and daxpin besides', async (t) => {
  const run = readProvenance('run-start');
  t.equal(run.procVersion, fs.readFileSync('/proc/version', 'utf8').trim());
  t.equal(run.node, process.version);
  t.ok('mkfs.ext4' in run.tools && 'e2fsck' in run.tools);
  t.equal(run.kernelLogFrom, 'run-start');
});
