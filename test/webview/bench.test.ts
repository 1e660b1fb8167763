import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import type { BenchToWebview } from '../../src/protocol/bench';
import { benchRows } from '../../src/core/bench/report';
import { benchHtml } from '../../webview/html';
import { fixtureReport } from '../support/benchFixture';
import { benchGoals } from '../../src/core/bench/goals';
import { REPO_ROOT } from '../support/models';
import { CHROMIUM, deliver, posted, violations, WebviewHarness } from '../support/webviewHarness';

describe('benchmark report webview in headless Chromium', function () {
  this.timeout(60_000);
  const harness = new WebviewHarness(benchHtml, 'bench.js', 'bench.css');
  let page: Page;
  const previous = fixtureReport((r) => { r.createdAt = '2026-11-21T10:00:00.000Z'; r.generationTokensPerSecond.median = 313.2; r.load.totalMs = 5833.2; });
  const report = fixtureReport((r) => { r.eventLoop = { maxBlockMs: 24 }; r.throughput = { singleTokensPerSecond: 60, concurrentTokensPerSecond: 72 }; r.goals = benchGoals(r); });
  const message: BenchToWebview = {
    type: 'report', report, previous,
    history: [previous, report].map((r) => ({ createdAt: r.createdAt, generationTokensPerSecond: r.generationTokensPerSecond.median, firstTokenMs: r.firstTokenMs.short.median })),
  };

  before(async function () {
    if (!fs.existsSync(CHROMIUM)) this.skip();
    await harness.start();
  });
  after(() => harness.stop());
  afterEach(async () => { await page?.close(); });

  /** How many canvas pixels differ from the first one: a drawn chart has many. */
  const inked = (id: string) => page.evaluate((canvasId) => {
    const canvas = document.getElementById(canvasId) as HTMLCanvasElement;
    const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
    let count = 0;
    for (let i = 0; i < data.length; i += 4) if (data[i + 3]! > 0) count++;
    return count;
  }, id);

  it('draws every chart and a table row for every measurement, compared with the previous run', async () => {
    page = await harness.open();
    await deliver(page, message);
    await page.waitForSelector(`body[data-rendered="${report.createdAt}"]`);
    for (const id of ['throughput-chart', 'threads-chart', 'tokenizer-chart', 'turns-chart', 'history-chart']) {
      assert.ok(await inked(id) > 500, `${id} has been drawn`);
    }
    const rows = benchRows(report, previous);
    assert.equal(await page.locator('#table tbody tr').count(), rows.length);
    assert.deepEqual(await page.locator('#table thead th').allInnerTexts(), ['Section', 'Measurement', 'Value', 'Previous', 'Change']);
    const generation = page.locator('#table tbody tr', { hasText: 'Generation (median)' });
    assert.match(await generation.innerText(), /626\.3 tok\/s\s+313\.2 tok\/s\s+\+100\.0% better/);
    assert.match(await page.locator('#table tbody tr', { hasText: 'Extension activation' }).innerText(), /31\.4 ms/);
    assert.match(await page.locator('#summary').innerText(), /Generation \(median\)\s+626\.3 tok\/s\s+\+100\.0% better/);
    assert.match(await page.locator('#subtitle').innerText(), /stories260K \(llama, 1\.2 MB\) on .*2 cores, CPU/);
    // Each goal beside its measurement, met or not.
    assert.ok(report.goals!.length >= 3);
    assert.equal(await page.locator('#goals tbody tr').count(), report.goals!.length);
    const loop = page.locator('#goals tbody tr', { hasText: 'event-loop block' });
    const goal = report.goals!.find((g) => g.name.includes('event-loop block'))!;
    assert.match(await loop.innerText(), new RegExp(`${goal.measured}\\s+≤ 50 ms\\s+${goal.met ? 'yes' : 'no'}`));
    assert.equal(await loop.locator('td').last().getAttribute('class'), goal.met ? 'better' : 'worse');
    await page.screenshot({ path: path.join(REPO_ROOT, 'test-results', 'bench-report-webview.png'), fullPage: true });
    assert.deepEqual(await violations(page), [], 'Chart.js and the page obey the CSP');
    assert.deepEqual(harness.external, []);
  });

  it('shows a server benchmark: concurrency instead of threads, no embedded-only rows', async () => {
    const server = fixtureReport((r) => {
      r.backend = 'server';
      r.server = { url: 'http://gpu-box:8080/v1' };
      r.threads = [];
      r.defaultThreads = 0;
      r.concurrency = [1, 4, 16].map((requests) => ({ requests, p50: 20 * requests, p95: 25 * requests, p99: 30 * requests, tokensPerSecond: 300 + requests * 10 }));
    });
    page = await harness.open();
    const update: BenchToWebview = { type: 'report', report: server, previous: null, history: [] };
    await deliver(page, update);
    await page.waitForSelector(`body[data-rendered="${server.createdAt}"]`);
    assert.ok(await inked('threads-chart') > 500, 'the concurrency chart has been drawn');
    assert.equal(await page.locator('#threads-caption').innerText(), 'Throughput by requests at once (tokens/s, all requests)');
    assert.equal(await page.locator('#table tbody tr').count(), benchRows(server).length);
    assert.match(await page.locator('#table tbody tr', { hasText: '16 at once, latency p99' }).innerText(), /480 ms/);
    assert.equal(await page.locator('#table tbody tr', { hasText: 'Load model' }).count(), 0);
    assert.match(await page.locator('#subtitle').innerText(), /on the server http:\/\/gpu-box:8080\/v1/);
    assert.deepEqual(await violations(page), []);
  });

  it('asks the host to export, copy and run again', async () => {
    page = await harness.open();
    await deliver(page, message);
    await page.getByRole('button', { name: 'Export as Markdown…' }).click();
    await page.getByRole('button', { name: 'Copy Markdown' }).click();
    await page.getByRole('button', { name: 'Run again' }).click();
    assert.deepEqual((await posted(page)).map((m) => m.type), ['ready', 'exportMarkdown', 'copyMarkdown', 'runAgain']);
  });

  it('restores the last report from its saved state after a reload, and ignores malformed messages', async () => {
    page = await harness.open({ ...message, previous: null });
    await page.waitForSelector(`body[data-rendered="${report.createdAt}"]`);
    assert.deepEqual(await page.locator('#table thead th').allInnerTexts(), ['Section', 'Measurement', 'Value'], 'no comparison without a previous run');
    const warnings: string[] = [];
    page.on('console', (m) => { if (m.type() === 'warning') warnings.push(m.text()); });
    await deliver(page, { type: 'report', report: { version: 1 } }, { type: 'report', report: null, previous: null, history: [] }, '<img src=x onerror=alert(1)>');
    assert.equal(warnings.filter((w) => /dropped a malformed message/.test(w)).length, 3, warnings.join('\n'));
    assert.equal(await page.locator('#table tbody tr').count(), benchRows(report).length, 'the report is still shown');
    assert.deepEqual(await violations(page), []);
  });
});
