// LAVA: the test definition in lava/ and the jobs `daxpin lava` writes validate with Debian's
// lava-common schemas (the code LAVA's server and dispatcher validate with); bad input to
// `daxpin lava` is one line and exit 2. Running the definition in a guest: test/vm/lava.test.ts.

import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { toYaml } from '../../lib/lava';
import { runCli, testDir } from '../helpers/cli';
import { lavaMissing, lavaValidate } from '../helpers/lava';

const ROOT = path.resolve(__dirname, '../../..');
const SKIP = lavaMissing() ?? false;
const JOB = ['lava', '--kernel', 'https://lab.example/kernels/vmlinuz-7.3.4', '--device-type', 'x86', '--pmem', '/dev/pmem1', '--rootfs', 'https://lab.example/rootfs/bookworm.tar.xz', '--repository', 'https://git.example/daxpin.git'];

t.test('lava/daxpin.yaml is a valid Lava-Test Test Definition 1.0', { skip: SKIP }, async (t) => {
  const file = path.join(ROOT, 'lava/daxpin.yaml');
  t.same(lavaValidate('testdef', file), { valid: true, message: 'valid' });
  const dir = testDir(t, 'daxpin-lava-');
  const broken = path.join(dir, 'broken.yaml');
  fs.writeFileSync(broken, fs.readFileSync(file, 'utf8').replace('format: Lava-Test Test Definition 1.0', 'format: Lava-Test Test Definition 2.0'));
  t.match(lavaValidate('testdef', broken), { valid: false, message: /format/ }, 'the schema refuses a wrong format line');
});

t.test('daxpin lava writes a job lava-common accepts (strict)', { skip: SKIP }, async (t) => {
  const dir = testDir(t, 'daxpin-lava-');
  const plain = path.join(dir, 'plain.yaml');
  let r = await runCli([...JOB, '--out', plain]);
  t.equal(r.code, 0, r.stderr);
  t.same(lavaValidate('job', plain), { valid: true, message: 'valid' });
  const text = fs.readFileSync(plain, 'utf8');
  t.match(text, /^device_type: x86\n/);
  t.match(text, /\n {6}kernel:\n {8}url: "https:\/\/lab\.example\/kernels\/vmlinuz-7\.3\.4"\n/);
  t.match(text, /\n {10}path: "lava\/daxpin\.yaml"\n/);
  t.match(text, /\n {12}PMEM: "\/dev\/pmem1"\n/);
  // Quoted only when YAML needs it: a hash that starts with a digit is, one that starts with a letter is not.
  t.match(text, /\n {10}revision: ("[0-9a-f]{40}"|[a-f][0-9a-f]{39})\n/, "this checkout's HEAD by default");

  const full = path.join(dir, 'full.yaml');
  r = await runCli([...JOB, '--modules', 'https://lab.example/m.tar.gz', '--ramdisk', 'https://lab.example/initrd.img', '--kernel-args', 'memmap=4G!12G', '--boot-method', 'grub', '--config', 'xfs-dax', '--cases', 'odirect-*', '--matrix', 'smoke', '--revision', 'v1', '--out', full]);
  t.equal(r.code, 0, r.stderr);
  t.same(lavaValidate('job', full), { valid: true, message: 'valid' }, 'with every option');
  const fullText = fs.readFileSync(full, 'utf8');
  t.match(fullText, 'extra_kernel_args: "memmap=4G!12G"');
  t.match(fullText, /modules:\n {8}url: "https:\/\/lab\.example\/m\.tar\.gz"\n {8}compression: gz\n/);
  t.match(fullText, /CONFIGS: xfs-dax\n {12}CASES: "odirect-\*"\n/);

  const noKernel = path.join(dir, 'no-kernel.yaml');
  fs.writeFileSync(noKernel, text.replace(/ {6}kernel:\n {8}url: .*\n/, ''));
  t.match(lavaValidate('job', noKernel), { valid: false, message: /needs a kernel to deploy/ }, 'the schema can refuse: a deploy without a kernel');
  const extra = path.join(dir, 'extra.yaml');
  fs.writeFileSync(extra, `${text}surprise: 1\n`);
  t.match(lavaValidate('job', extra), { valid: false }, 'strict: an unknown key is refused');
});

t.test('daxpin lava: bad input is one line, exit 2', async (t) => {
  const without = (flag: string) => {
    const i = JOB.indexOf(flag);
    return [...JOB.slice(0, i), ...JOB.slice(i + 2)];
  };
  const cases: Array<[string, string[], RegExp]> = [
    ['not pmem', JOB.map((a) => (a === '/dev/pmem1' ? '/dev/sda' : a)), /--pmem must be a pmem block device \/dev\/pmemN, got "\/dev\/sda"/],
    ['kernel not a URL', JOB.map((a) => (a.includes('vmlinuz') ? 'vmlinuz' : a)), /--kernel must be a URL the lab can download/],
    ['file URL', JOB.map((a) => (a.endsWith('bookworm.tar.xz') ? 'file:///srv/rootfs.tar.xz' : a)), /--rootfs must be an http\(s\) or ftp URL/],
    ['no device type', without('--device-type'), /required option '--device-type <type>' not specified/],
    ['unknown config', [...JOB, '--config', 'zfs'], /unknown config "zfs"/],
    ['bad device type', JOB.map((a) => (a === 'x86' ? 'x86 board' : a)), /--device-type must be a LAVA device type name/],
  ];
  for (const [why, args, says] of cases) {
    const r = await runCli(args);
    t.equal(r.code, 2, why);
    t.match(r.stderr, says, why);
    t.equal(r.stderr.trim().split('\n').length, 1, `${why}: one line`);
    t.equal(r.stdout, '', `${why}: no job`);
  }
});

t.test('toYaml: plain data as block YAML', async (t) => {
  t.equal(toYaml({ a: 1, b: 'x y', c: [true, 'on', { d: null, e: [] }], f: {} }), 'a: 1\nb: "x y"\nc:\n  - true\n  - "on"\n  - d: null\n    e: []\nf: {}\n');
  t.equal(toYaml({ list: [[1, 2], 'a:b'] }), 'list:\n  -\n    - 1\n    - 2\n  - "a:b"\n');
});
