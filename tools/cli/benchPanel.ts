// npm run bench:panel -- [--chars N] [--delta N] [--every MS] [--json]
// The chat panel's own main thread while a long reply streams in: the real webview (its HTML, CSP and
// bundle) in headless Chromium, fed deltas as the extension sends them. Reports the longest gap of a
// 5 ms timer in the page (how long the panel could not respond to typing, scrolling or the Stop
// button) per stretch of the reply, the share of the time the page was busy, and what rendering the
// finished message took.
import { parseArgs } from 'node:util';
import type { Page } from 'playwright-core';
import type { ToWebview } from '../../src/protocol/panel';
import { panelHtml } from '../../webview/html';
import { deliver, WebviewHarness } from '../../test/support/webviewHarness';
import { longReply } from '../../test/support/longReply';

interface Gaps { longest: number; busyMs: number; spanMs: number }

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    chars: { type: 'string', default: '40000' }, delta: { type: 'string', default: '32' }, every: { type: 'string', default: '16' }, json: { type: 'boolean', default: false },
  } });
  const chars = Number(values.chars), deltaChars = Number(values.delta), everyMs = Number(values.every);
  const reply = longReply(chars);
  const harness = new WebviewHarness(panelHtml, 'webview.js', 'webview.css');
  await harness.start();
  try {
    const page = await harness.open();
    // As a user would: the panel is open a moment before the first reply (it compiles grammars meanwhile).
    await new Promise((r) => setTimeout(r, 1_500));
    const send = (m: ToWebview) => deliver(page, m);
    await send({ type: 'model', model: { kind: 'ready', name: 'bench', contextSize: 32768 } });
    const conversations = [{ id: 'c1', title: 'Bench', updatedAt: 1 }];
    const user = { role: 'user' as const, content: 'Explain it with examples.', createdAt: 1 };
    await send({ type: 'state', activeId: 'c1', generating: true, contextUsed: 0, messages: [user], conversations });
    await startGapMonitor(page);
    const stretches: Array<{ upTo: number } & Gaps> = [];
    const marks = [0.25, 0.5, 0.75, 1].map((f) => Math.round(reply.length * f));
    const started = performance.now();
    let sent = 0;
    for (const mark of marks) {
      await takeGaps(page); // from here
      while (sent < mark) {
        const next = Math.min(mark, sent + deltaChars);
        await send({ type: 'delta', conversationId: 'c1', text: reply.slice(sent, next) });
        sent = next;
        const due = started + (sent / deltaChars) * everyMs;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      await new Promise((r) => setTimeout(r, 120)); // the throttled render of the last delta
      stretches.push({ upTo: mark, ...await takeGaps(page) });
    }
    const finalStarted = performance.now();
    await send({ type: 'state', activeId: 'c1', generating: false, contextUsed: 0, messages: [user, { role: 'assistant', content: reply, createdAt: 2 }], conversations });
    const finalMs = performance.now() - finalStarted;
    const again = performance.now();
    await send({ type: 'state', activeId: 'c1', generating: false, contextUsed: 0, messages: [user, { role: 'assistant', content: reply, createdAt: 2 }], conversations });
    const againMs = performance.now() - again;
    const shown = await page.locator('.message.assistant .body').innerText();
    const lastHeading = reply.split('\n').filter((l) => l.startsWith('## ')).at(-1)!.slice(3);
    if (!shown.includes(lastHeading)) throw new Error('the finished reply is not shown');
    const result = {
      chars: reply.length, deltaChars, everyMs,
      stretches: stretches.map((s) => ({ upToChars: s.upTo, longestBlockMs: Math.round(s.longest), busyShare: Math.round((s.busyMs / s.spanMs) * 100) / 100 })),
      finishedRenderMs: Math.round(finalMs), rerenderMs: Math.round(againMs),
    };
    if (values.json) console.log(JSON.stringify(result, null, 2));
    else {
      console.log(`A ${result.chars.toLocaleString()}-character reply, ${deltaChars} characters every ${everyMs} ms, into the chat panel (headless Chromium):`);
      for (const s of result.stretches) console.log(`  up to ${s.upToChars.toLocaleString().padStart(6)} characters: longest block ${String(s.longestBlockMs).padStart(4)} ms, busy ${Math.round(s.busyShare * 100)}% of the time`);
      console.log(`  the finished message: ${result.finishedRenderMs} ms to render; the same state again: ${result.rerenderMs} ms`);
    }
  } finally {
    await harness.stop();
  }
}

/** A 5 ms timer in the page: its gaps are the time the page's main thread was busy. */
async function startGapMonitor(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { __gaps: { longest: number; busyMs: number; since: number } };
    w.__gaps = { longest: 0, busyMs: 0, since: performance.now() };
    let last = performance.now();
    setInterval(() => {
      const now = performance.now();
      const gap = now - last;
      last = now;
      if (gap > w.__gaps.longest) w.__gaps.longest = gap;
      if (gap > 6) w.__gaps.busyMs += gap - 5;
    }, 5);
  });
}

async function takeGaps(page: Page): Promise<Gaps> {
  return page.evaluate(() => {
    const w = window as unknown as { __gaps: { longest: number; busyMs: number; since: number } };
    const now = performance.now();
    const taken = { longest: w.__gaps.longest, busyMs: w.__gaps.busyMs, spanMs: now - w.__gaps.since };
    w.__gaps = { longest: 0, busyMs: 0, since: now };
    return taken;
  });
}

main().catch((err) => { console.error(err); process.exit(1); });
