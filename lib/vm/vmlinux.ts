// The uncompressed kernel for a PVH boot. A bzImage makes the guest decompress the
// kernel itself before it starts, which under TCG takes seconds (xz worst; figures in
// bench/README.md). qemu boots an ELF vmlinux carrying the PVH entry note
// (CONFIG_PVH) directly, so the payload is unpacked once on the host and cached next
// to the initramfs images (never in the repo). A kernel without the note, or with a
// payload we cannot unpack, is booted from its bzImage as before.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { cacheRoot, ensureDir, exists, storeVersion, versionsOf } from './cache';
import { programHeaders } from './initramfs';
import { Kernel } from './kernels';

/** Xen ELF note XEN_ELFNOTE_PHYS32_ENTRY: the 32-bit PVH entry point qemu jumps to. */
const XEN_ELFNOTE_PHYS32_ENTRY = 18;

/** The compressed payload of a bzImage (boot protocol ≥ 2.08), without the appended size. */
export function bzImagePayload(image: Buffer): Buffer | null {
  if (image.length < 0x250 || image.toString('latin1', 0x202, 0x206) !== 'HdrS') return null;
  if (image.readUInt16LE(0x206) < 0x208) return null;
  const setupSects = image[0x1f1] || 4;
  const start = (setupSects + 1) * 512 + image.readUInt32LE(0x248);
  const length = image.readUInt32LE(0x24c);
  if (length < 8 || start + length > image.length) return null;
  // The kernel's build appends the uncompressed size (4 bytes) to the compressed data.
  return image.subarray(start, start + length - 4);
}

/** The decompressor for a payload, by its magic; null when unknown. */
export function payloadFormat(payload: Buffer): 'gzip' | 'xz' | 'zstd' | 'lzma' | 'bzip2' | 'lz4' | null {
  const hex = payload.subarray(0, 6).toString('hex');
  if (hex.startsWith('1f8b')) return 'gzip';
  if (hex === 'fd377a585a00') return 'xz';
  if (hex.startsWith('28b52ffd')) return 'zstd';
  if (hex.startsWith('5d00')) return 'lzma';
  if (hex.startsWith('425a68')) return 'bzip2';
  if (hex.startsWith('02214c18')) return 'lz4';
  return null;
}

/** Whether an ELF64 executable has the PVH entry note (a PT_NOTE "Xen" note of type 18). */
export function hasPvhNote(elf: Buffer): boolean {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2) return false;
  for (const ph of programHeaders(elf)) {
    if (ph.type !== 4 /* PT_NOTE */) continue;
    let at = ph.offset;
    const end = Math.min(at + ph.size, elf.length);
    while (at + 12 <= end) {
      const namesz = elf.readUInt32LE(at);
      const descsz = elf.readUInt32LE(at + 4);
      const type = elf.readUInt32LE(at + 8);
      const name = elf.toString('latin1', at + 12, at + 12 + Math.max(0, namesz - 1));
      if (name === 'Xen' && type === XEN_ELFNOTE_PHYS32_ENTRY) return true;
      at += 12 + Math.ceil(namesz / 4) * 4 + Math.ceil(descsz / 4) * 4;
    }
  }
  return false;
}

const TOOLS: Record<string, string[]> = {
  xz: ['xz', '-dc'],
  lzma: ['xz', '--format=lzma', '-dc'],
  zstd: ['zstd', '-dcq'],
  bzip2: ['bzip2', '-dc'],
  lz4: ['lz4', '-dc'],
};

async function decompress(payload: Buffer, format: NonNullable<ReturnType<typeof payloadFormat>>): Promise<Buffer> {
  if (format === 'gzip') return promisify(zlib.gunzip)(payload);
  const [tool, ...args] = TOOLS[format];
  return new Promise((resolve, reject) => {
    const child = spawn(tool, args, { stdio: ['pipe', 'pipe', 'ignore'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.once('error', reject);
    child.stdin.on('error', () => undefined);
    child.once('close', (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`${tool} exited ${code}`))));
    child.stdin.end(payload);
  });
}

function vmlinuxDir(): string {
  return path.join(cacheRoot(), 'vmlinux');
}

/**
 * The PVH-bootable vmlinux of this kernel (unpacked from its bzImage on first use and
 * cached), or null when the kernel cannot be booted that way: then boot the bzImage.
 */
export async function pvhImage(kernel: Kernel): Promise<string | null> {
  const st = await fs.stat(kernel.vmlinuz);
  const key = createHash('sha256')
    .update(JSON.stringify({ vmlinuz: path.resolve(kernel.vmlinuz), size: st.size, mtime: st.mtimeMs }))
    .digest('hex')
    .slice(0, 16);
  const dir = vmlinuxDir();
  const out = path.join(dir, `${kernel.release}-${key}.elf`);
  const none = path.join(dir, `${kernel.release}-${key}.none`);
  if (await exists(out)) return out;
  if (await exists(none)) return null;
  await ensureDir(dir);
  const payload = bzImagePayload(await fs.readFile(kernel.vmlinuz));
  const format = payload && payloadFormat(payload);
  let elf: Buffer | null = null;
  if (payload && format) elf = await decompress(payload, format).catch(() => null);
  if (!elf || !hasPvhNote(elf)) {
    // Remembered, so the bzImage is not read again on every boot.
    await fs.writeFile(none, `${format ?? 'unknown payload'}: ${elf ? 'no PVH note' : 'not unpacked'}\n`);
    return null;
  }
  // The other versions go: images and "no PVH note" markers built from older inputs.
  await storeVersion(out, elf, versionsOf(kernel.release, '\\.(elf|none)'));
  return out;
}
