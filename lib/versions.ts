// Version order, numeric component by component: `6.12.9` < `6.12.10` < `7.0`. Kernel
// releases, Debian upstream versions and expectation ranges all compare with this.

export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.+~-]/).map((x) => parseInt(x, 10));
  const pb = b.split(/[.+~-]/).map((x) => parseInt(x, 10));
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (Number.isNaN(pa[i]) ? -1 : pa[i] ?? -1) - (Number.isNaN(pb[i]) ? -1 : pb[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}
