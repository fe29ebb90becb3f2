// The Debian packages daxpin needs, read from scripts/packages: the one list that
// scripts/provision installs from, the VM runner checks, and a missing tool names.
import * as fs from 'node:fs';
import * as path from 'node:path';

export type PackageUse = 'vm' | 'configs' | 'test';

export interface HostPackage {
  name: string;
  uses: PackageUse[];
  /** Executables daxpin runs from it. */
  tools: string[];
  why: string;
}

/** dist/lib/host → the repository's scripts/packages (a guest runs the host's tree too). */
const LIST = path.join(__dirname, '..', '..', '..', 'scripts', 'packages');

export function parsePackageList(text: string): HostPackage[] {
  const out: HostPackage[] = [];
  for (const line of text.split('\n')) {
    if (/^\s*(#|$)/.test(line)) continue;
    const [name, uses, tools, ...why] = line.trim().split(/\s+/);
    out.push({ name, uses: uses.split(',') as PackageUse[], tools: tools === '-' ? [] : tools.split(','), why: why.join(' ') });
  }
  return out;
}

let cached: HostPackage[] | null = null;

export function hostPackages(use?: PackageUse): HostPackage[] {
  cached ??= parsePackageList(fs.readFileSync(LIST, 'utf8'));
  return use === undefined ? cached : cached.filter((p) => p.uses.includes(use));
}

/** The package that provides `tool`, or null when the list does not name it. */
export function packageOfTool(tool: string): string | null {
  return hostPackages().find((p) => p.tools.includes(tool))?.name ?? null;
}
