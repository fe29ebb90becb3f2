// The HTML report in a real headless Chromium: every case shown, filters work,
// details open on a click, no network, markup in measured text stays text.
// Screenshot: test-artifacts/report-matrix.png; with DAXPIN_UPDATE_SCREENSHOT=1
// also docs/report-matrix.png (the README's).

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';
import t from 'tap';
import { renderHtml } from '../../lib/report/html';
import { parseRunText } from '../../lib/report/runfile';
import { KERNEL_A, KERNEL_B, PLANTED, plannedKeys, runAText, runBText } from '../fixtures/runs';
import { SEVEN_KERNELS, sevenKernelRunText } from '../fixtures/seven';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = path.resolve(__dirname, '../../..');

t.test('the HTML matrix in headless Chromium', async (t) => {
  if (!fs.existsSync(CHROMIUM)) {
    t.fail(`${CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium)`);
    return;
  }
  const dir = t.testdir({ 'report.html': renderHtml([parseRunText(runAText(), 'a.jsonl'), parseRunText(runBText(), 'b.jsonl')]) });
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'daxpin-chromium-'));
  const context: BrowserContext = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1600, height: 1000 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.teardown(async () => {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  });
  const page: Page = await context.newPage();
  const pageErrors: string[] = [];
  const requests: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(`file://${path.join(dir, 'report.html')}`);

  const rows = page.locator('#matrix tr.case');
  const visibleKeys = () => page.locator('#matrix tr.case:not(.hidden)').evaluateAll((trs) => trs.map((tr) => (tr as HTMLElement).dataset.key as string));

  t.test('every case is shown, with one cell per kernel', async (t) => {
    t.same((await visibleKeys()).sort(), plannedKeys().sort());
    t.equal(await page.locator('#matrix tr.case td.cell').count(), plannedKeys().length * 2);
    t.same(await page.locator('#matrix thead th.kernel').evaluateAll((ths) => ths.map((th) => th.firstChild?.textContent)), [KERNEL_A, KERNEL_B]);
    t.equal(await page.locator('#count').textContent(), `showing ${plannedKeys().length} of ${plannedKeys().length} cases`);
  });

  t.test('cells are coloured by verdict', async (t) => {
    const cell = (key: string, col: number) => page.locator(`#matrix tr.case[data-key="${key}"] td.cell`).nth(col);
    t.equal(await cell(PLANTED.foreign, 1).getAttribute('data-verdict'), 'violation');
    t.equal(await cell(PLANTED.foreign, 0).getAttribute('data-verdict'), 'ok');
    t.equal(await cell(PLANTED.crashed, 1).getAttribute('data-verdict'), 'crashed');
    t.equal(await cell(PLANTED.notRun[0], 1).getAttribute('data-verdict'), 'not-run');
    const red = await cell(PLANTED.foreign, 1).evaluate((td) => getComputedStyle(td).backgroundColor);
    const green = await cell(PLANTED.foreign, 0).evaluate((td) => getComputedStyle(td).backgroundColor);
    t.equal(red, 'rgb(211, 47, 47)');
    t.equal(green, 'rgb(129, 199, 132)');
  });

  t.test('filters', async (t) => {
    await page.selectOption('#f-pin', 'vmsplice');
    const vmsplice = await visibleKeys();
    t.same(vmsplice.sort(), plannedKeys().filter((k) => k.split('/')[1].startsWith('vmsplice.')).sort(), 'only vmsplice rows');
    t.equal(await page.locator('#count').textContent(), `showing ${vmsplice.length} of ${plannedKeys().length} cases`);
    await page.selectOption('#f-config', 'xfs-dax');
    t.same((await visibleKeys()).sort(), plannedKeys().filter((k) => k.startsWith('xfs-dax/vmsplice.')).sort(), 'pin and config together');
    t.same(
      await page.locator('#matrix tr.group:not(.hidden)').evaluateAll((trs) => trs.map((tr) => (tr as HTMLElement).dataset.group)),
      ['differs', 'xfs-dax'],
      'only the group headers with rows left: the differing rows, then xfs-dax',
    );
    await page.selectOption('#f-pin', '');
    await page.selectOption('#f-config', '');
    await page.selectOption('#f-verdict', 'violation');
    t.same((await visibleKeys()).sort(), [PLANTED.foreign, PLANTED.hung, PLANTED.longterm, PLANTED.warn].sort(), 'rows with a violation on some kernel');
    await page.selectOption('#f-verdict', '');
    await page.fill('#f-text', 'EFAULT');
    t.equal((await visibleKeys()).length, 18, 'text matches outcome classes');
    await page.fill('#f-text', '');
    t.equal(await rows.count(), (await visibleKeys()).length, 'clearing the filters shows everything again');
  });

  t.test('the page opens on the findings; a finding links to its cases', async (t) => {
    const first = await page.locator('section').first().getAttribute('id');
    t.equal(first, 'findings', 'findings come before the case matrix');
    const id = 'foreign-after-early-return/fsdax.mapped';
    const row = page.locator('#findings tr.finding', { hasText: id });
    t.same((await row.locator('td').allTextContents()).slice(1, 5), ['violation', '1', 'absent 0/1', 'present 1/1']);
    await row.locator('a.finding-link').click();
    t.same(await visibleKeys(), [PLANTED.foreign], 'the matrix shows the finding\'s cases');
    await page.selectOption('#f-finding', '');
    t.equal((await visibleKeys()).length, plannedKeys().length);
  });

  t.test('rows whose outcome differs between kernels come first', async (t) => {
    const keys = await visibleKeys();
    const groups = await page.locator('#matrix tr.case').evaluateAll((trs) => trs.map((tr) => (tr as HTMLElement).dataset.group));
    const firstSame = groups.findIndex((g) => g !== 'differs');
    t.ok(firstSame > 0, 'some rows differ');
    t.ok(groups.slice(firstSame).every((g) => g !== 'differs'), 'all differing rows before the others');
    for (const key of [PLANTED.foreign, PLANTED.warn, PLANTED.crashed, PLANTED.longterm]) t.ok(keys.indexOf(key) < firstSame, `${key} among the first`);
  });

  t.test('details on demand, markup stays text', async (t) => {
    await page.locator(`#matrix tr.case[data-key="${PLANTED.crashed}"] td.cell`).nth(1).click();
    await page.waitForSelector('#details:not([hidden])');
    const text = (await page.locator('#details-text').textContent()) ?? '';
    t.match(text, 'Kernel panic - not syncing: Fatal exception', 'console excerpt');
    t.match(text, `reproduce: daxpin vm --kernel ${KERNEL_B} --config ext4-dax --cases 'vmsplice.punch-hole.pte-shared'`);
    await page.locator(`#matrix tr.case[data-key="${PLANTED.error}"] td.cell`).nth(0).click();
    t.match(await page.locator('#details-text').textContent(), 'FUSE mount failed: <b>fusermount3</b> & "quotes" </script>');
    t.equal(await page.locator('#details b, #matrix b').count(), 0, 'no element was injected');
    await page.keyboard.press('Escape');
    t.equal(await page.locator('#details').isHidden(), true);
  });

  t.test('screenshot', async (t) => {
    await page.selectOption('#f-config', 'xfs-dax');
    await page.locator(`#matrix tr.case[data-key="${PLANTED.foreign}"] td.cell`).nth(1).click();
    await page.evaluate(() => window.scrollTo(0, 0));
    const shot = path.join(ROOT, 'test-artifacts', 'report-matrix.png');
    fs.mkdirSync(path.dirname(shot), { recursive: true });
    await page.screenshot({ path: shot });
    t.ok(fs.statSync(shot).size > 10_000, shot);
    if (process.env.DAXPIN_UPDATE_SCREENSHOT === '1') {
      fs.mkdirSync(path.join(ROOT, 'docs'), { recursive: true });
      fs.copyFileSync(shot, path.join(ROOT, 'docs', 'report-matrix.png'));
    }
  });

  t.test('a seven-kernel default-matrix report stays within 2 MB and shows every cell', async (t) => {
    const runs = SEVEN_KERNELS.map((_, i) => parseRunText(sevenKernelRunText(i), `k${i}.jsonl`));
    const html = renderHtml(runs);
    t.ok(Buffer.byteLength(html) <= 2 * 1024 * 1024, `${Buffer.byteLength(html)} bytes`);
    const file = path.join(dir, 'seven.html');
    fs.writeFileSync(file, html);
    const seven = await context.newPage();
    const errors: string[] = [];
    seven.on('pageerror', (e) => errors.push(e.message));
    await seven.goto(`file://${file}`);
    t.equal(await seven.locator('#matrix tr.case').count(), 2184);
    t.equal(await seven.locator('#matrix tr.case td.cell').count(), 2184 * 7);
    t.equal(await seven.locator('#findings tr.finding').first().getAttribute('class'), 'finding s-violation');
    const first = await seven.locator('#matrix tr.case').first().getAttribute('data-group');
    t.equal(first, 'differs');
    await seven.locator('#matrix tr.case td.cell').first().click();
    t.match(await seven.locator('#details-text').textContent(), /reproduce: daxpin vm --kernel 6\.1\.0-50-amd64 --config \S+ --cases '/);
    t.same(errors, []);
    await seven.close();
  });

  t.test('nothing went wrong in the page', async (t) => {
    t.same(pageErrors, []);
    t.same(
      requests.filter((u) => !u.startsWith('file://')),
      [],
      'no network requests',
    );
  });
});
