// The case matrix is the cross of its tables: counts, uniqueness, id format, globs.
import t from 'tap';
import {
  CONFIGS,
  Case,
  DEFAULT_MAPPINGS,
  LAYOUT_OPS,
  MAPPINGS,
  MatrixName,
  PIN_METHODS,
  caseId,
  casesFor,
  filterCases,
  findConfig,
  globToRegExp,
  mappingsFor,
} from '../../lib/cases/matrix';

const MATRICES: MatrixName[] = ['default', 'full', 'smoke'];

/** The distinct mappings, pins and ops a plan uses, and whether it is their full cross. */
function shape(cases: Case[]) {
  const m = new Set(cases.map((c) => c.mapping.name));
  const p = new Set(cases.map((c) => c.pinMethod.name));
  const o = new Set(cases.map((c) => c.layoutOp.name));
  const combos = new Set(cases.map((c) => `${c.mapping.name}|${c.pinMethod.name}|${c.layoutOp.name}`));
  return { mappings: m.size, pins: p.size, ops: o.size, combos: combos.size };
}

t.test('full and default cross every pin and op with their mappings', async (t) => {
  for (const config of CONFIGS) {
    t.equal(casesFor(config, 'full').length, MAPPINGS.length * PIN_METHODS.length * LAYOUT_OPS.length, `${config.name} full`);
    t.equal(casesFor(config, 'default').length, DEFAULT_MAPPINGS.length * PIN_METHODS.length * LAYOUT_OPS.length, `${config.name} default`);
    t.equal(casesFor(config).length, casesFor(config, 'default').length, 'default is the default');
  }
  t.equal(mappingsFor('full').length, MAPPINGS.length);
  t.same(mappingsFor('default').map((m) => m.name).sort(), [...DEFAULT_MAPPINGS].sort());
});

t.test('every matrix is a full cross: count = mappings x pins x ops, each combination once', async (t) => {
  for (const matrix of MATRICES) {
    const cases = casesFor(CONFIGS[0], matrix);
    const s = shape(cases);
    t.equal(cases.length, s.mappings * s.pins * s.ops, `${matrix}: ${s.mappings} x ${s.pins} x ${s.ops}`);
    t.equal(s.combos, cases.length, `${matrix}: no combination twice`);
    t.equal(s.mappings, mappingsFor(matrix).length);
  }
  const smoke = shape(casesFor(CONFIGS[0], 'smoke'));
  t.ok(smoke.pins < PIN_METHODS.length && smoke.ops < LAYOUT_OPS.length, 'smoke is smaller than default');
  t.ok(shape(casesFor(CONFIGS[0], 'smoke')).pins >= 2, 'smoke still has a control and a pin');
  t.ok(casesFor(CONFIGS[0], 'smoke').some((c) => c.pinMethod.path === 'none'), 'smoke has the control');
});

t.test('ids are unique within a config, pin.op.mapping, and name the case they belong to', async (t) => {
  for (const config of CONFIGS) {
    const cases = casesFor(config, 'full');
    t.equal(new Set(cases.map((c) => c.id)).size, cases.length, `${config.name}: unique ids`);
    for (const c of cases) {
      if (c.id !== `${c.pinMethod.name}.${c.layoutOp.name}.${c.mapping.name}`) t.fail(`id ${c.id}`);
      if (c.config !== config) t.fail(`${c.id} carries another config`);
      const [pin, op, mapping] = c.id.split('.');
      if (pin !== c.pinMethod.name || op !== c.layoutOp.name || mapping !== c.mapping.name) t.fail(`${c.id} does not split back`);
    }
  }
  t.equal(caseId('vmsplice', 'punch-hole', 'pte-shared'), 'vmsplice.punch-hole.pte-shared');
  for (const name of [...MAPPINGS, ...PIN_METHODS, ...LAYOUT_OPS].map((x) => x.name)) {
    t.notMatch(name, /[.*?/]/, `${name} has no character that ids or globs use`);
  }
});

t.test('table names are unique; findConfig finds each config and nothing else', async (t) => {
  for (const table of [CONFIGS, MAPPINGS, PIN_METHODS, LAYOUT_OPS] as { name: string }[][]) {
    t.equal(new Set(table.map((x) => x.name)).size, table.length);
  }
  for (const c of CONFIGS) t.equal(findConfig(c.name), c);
  t.equal(findConfig('ext5'), undefined);
  t.equal(findConfig(''), undefined);
});

t.test('filterCases: globs over ids and config/id, unions, no filter', async (t) => {
  const tmpfs = findConfig('tmpfs')!;
  const all = casesFor(tmpfs, 'full');
  t.equal(filterCases(all, undefined), all);
  t.equal(filterCases(all, []), all);
  t.same(
    filterCases(all, ['*.truncate-shrink.pte-shared']).map((c) => c.pinMethod.name),
    PIN_METHODS.map((p) => p.name),
    'one case per pin method',
  );
  t.equal(filterCases(all, ['tmpfs/*']).length, all.length, 'config/ prefix');
  t.equal(filterCases(all, ['ext4/*']).length, 0, 'another config');
  t.equal(filterCases(all, ['none.*']).length, MAPPINGS.length * LAYOUT_OPS.length);
  t.equal(filterCases(all, ['none.*', 'vmsplice.*']).length, 2 * MAPPINGS.length * LAYOUT_OPS.length, 'a union');
  t.equal(filterCases(all, ['none.*', 'none.punch-hole.*']).length, MAPPINGS.length * LAYOUT_OPS.length, 'overlapping globs: each case once');
  t.equal(filterCases(all, ['?one.punch-hole.pte-shared']).length, 1, '? is one character');
  t.equal(filterCases(all, ['none.punch-hole']).length, 0, 'anchored: a prefix alone matches nothing');
  t.equal(filterCases(all, ['nomatch*']).length, 0);
});

t.test('globToRegExp: only * and ? are special', async (t) => {
  t.notOk(globToRegExp('none.punch-hole.pte-shared').test('noneXpunch-hole.pte-shared'), '. is literal');
  t.ok(globToRegExp('a+b(c)[d]{e}^$|\\').test('a+b(c)[d]{e}^$|\\'));
  t.ok(globToRegExp('*').test(''));
  t.notOk(globToRegExp('?').test(''));
  t.ok(globToRegExp('x*z').test('x/y/z'), '* crosses slashes (config/id)');
});

t.test('the block-device, AIO and RDMA pins and the filesystem ops are in the default matrix', async (t) => {
  const ids = new Set(casesFor(findConfig('xfs-dax')!, 'default').map((c) => c.id));
  for (const pin of ['aio-read', 'aio-write', 'nbd-odirect-read', 'nbd-odirect-write', 'nbd-uring-read', 'nbd-uring-write', 'nbd-aio-read', 'nbd-aio-write', 'rdma-mr', 'rdma-mr-odp']) {
    t.ok(ids.has(caseId(pin, 'punch-hole', 'pte-shared')), pin);
  }
  for (const op of ['freeze', 'umount', 'unlink-umount']) t.ok(ids.has(caseId('odirect-read', op, 'pte-shared-unmapped')), op);
  // The id names the path: which peer and which submission interface.
  for (const p of PIN_METHODS.filter((x) => x.peer === 'nbd')) t.match(p.name, /^nbd-(odirect|uring|aio)-(read|write)$/, `${p.name} says nbd and how it is submitted`);
  for (const p of PIN_METHODS.filter((x) => x.peer === 'fuse')) t.notMatch(p.name, /^nbd-/, `${p.name} is a FUSE pin`);
  t.same(PIN_METHODS.filter((p) => p.longterm).map((p) => p.name).sort(), ['rdma-mr', 'uring-fixed'], 'FOLL_LONGTERM: registered buffers and a non-ODP memory region');
});
