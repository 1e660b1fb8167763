import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { Page } from 'playwright-core';
import type { PanelMessage, ToWebview } from '../../src/protocol/panel';
import { panelHtml } from '../../webview/html';
import { longReply } from '../support/longReply';
import { CHROMIUM, deliver, posted as postedBy, violations, WebviewHarness } from '../support/webviewHarness';

/** The XSS payloads model output might carry; none may run script or load anything. */
const XSS = [
  '<script>window.__xss = 1</script>',
  '<img src=x onerror="window.__xss = 2">',
  '[click me](javascript:window.__xss=3)',
  '<svg onload="window.__xss = 4"><circle r="1"/></svg>',
  '![tracker](https://evil.example/pixel.png)',
  '[data](data:text/html,<script>window.__xss=5</script>)',
  '<a href="javascript:window.__xss=6">html link</a>',
  '<iframe src="https://evil.example/"></iframe>',
  '<style>body { display: none }</style>',
  '<div style="background:url(https://evil.example/bg.png)">styled</div>',
  '[ref link][r]\n\n[r]: javascript:window.__xss=7',
  '<javascript:window.__xss=8>',
  '[entity](jav&#x61;script:window.__xss=9)',
  '<details open ontoggle="window.__xss=10">x</details>',
  '```html\n<script>window.__xss = 11</script>\n```',
];

describe('chat panel webview in headless Chromium', function () {
  this.timeout(60_000);
  const harness = new WebviewHarness(panelHtml, 'webview.js', 'webview.css');
  const external = harness.external;
  let page: Page;

  before(async function () {
    if (!fs.existsSync(CHROMIUM)) this.skip();
    await harness.start();
  });
  after(() => harness.stop());
  beforeEach(async () => { page = await harness.open(); });
  afterEach(async () => { await page.close(); });

  const send = (message: ToWebview) => deliver(page, message);
  const posted = () => postedBy(page);
  const state = (messages: PanelMessage[], extra: Partial<Extract<ToWebview, { type: 'state' }>> = {}) => send({
    type: 'state', activeId: 'c1', generating: false, contextUsed: 0, messages,
    conversations: [{ id: 'c1', title: 'First chat', updatedAt: 2 }, { id: 'c2', title: 'Second chat', updatedAt: 1 }], ...extra,
  });
  const msg = (role: 'user' | 'assistant', content: string): PanelMessage => ({ role, content, createdAt: 1 });

  it('offers download and local-file buttons when there is no model', async () => {
    await send({ type: 'model', model: { kind: 'none' } });
    await page.getByRole('button', { name: 'Download a model' }).click();
    await page.getByRole('button', { name: 'Use a local GGUF file…' }).click();
    const commands = (await posted()).filter((m) => m.type === 'command').map((m) => m.command);
    assert.deepEqual(commands, ['download', 'useLocal']);
    await send({ type: 'model', model: { kind: 'error', error: 'model.gguf is truncated' } });
    assert.match(await page.locator('#banner').innerText(), /truncated/);
    await page.getByRole('button', { name: 'Retry' }).click();
    await send({ type: 'model', model: { kind: 'ready', name: 'stories260K', contextSize: 1024 } });
    assert.equal(await page.locator('#banner').isHidden(), true);
    assert.equal(await page.locator('#model-state').innerText(), 'stories260K');
  });

  it('streams deltas into one message with a cursor, without re-rendering the earlier ones', async () => {
    await send({ type: 'model', model: { kind: 'ready', name: 'm', contextSize: 1000 } });
    await state([msg('user', 'Hi'), msg('assistant', 'Hello *there*'), msg('user', 'Tell me a story')], { generating: true, contextUsed: 250 });
    await page.evaluate(() => { (document.querySelector('.message.assistant') as HTMLElement & { marker?: number }).marker = 42; });
    for (const text of ['Once upon ', 'a **ti', 'me**, a cat ', 'sat.']) await send({ type: 'delta', conversationId: 'c1', text });
    const streaming = page.locator('.message.streaming');
    await streaming.locator('strong', { hasText: 'time' }).waitFor({ timeout: 2000 });
    assert.match(await streaming.innerText(), /Once upon a time, a cat sat\./);
    assert.equal(await streaming.locator('.cursor').count(), 1);
    assert.equal(await page.evaluate(() => (document.querySelector('.message.assistant') as HTMLElement & { marker?: number }).marker), 42, 'earlier messages are not re-rendered');
    assert.equal(await page.locator('#messages').getAttribute('aria-live'), 'polite');
    assert.equal(await page.locator('#context-label').innerText(), '250 / 1,000');
    await page.locator('#stop').click();
    await page.keyboard.press('Escape');
    assert.equal((await posted()).filter((m) => m.type === 'stop').length, 2);
    await state([msg('user', 'Tell me a story'), { ...msg('assistant', 'Once upon a time'), stats: { model: 'm', promptTokens: 10, completionTokens: 4, timeToFirstTokenMs: 12, tokensPerSecond: 99.5, totalMs: 50, stopReason: 'cancelled' } }]);
    assert.equal(await page.locator('.message.streaming').count(), 0);
    assert.match(await page.locator('.message.assistant .stats').innerText(), /4 tokens · first token 12 ms · 99\.5 tok\/s · m · stopped/);
  });

  it('streams a long reply rendering what has settled once, only the rest as it arrives, and ends with the whole rendered', async () => {
    const reply = longReply(14_000);
    // Cut inside the sixth section's code block (sections 3, 6, … give no language).
    const cut = reply.indexOf('def step_6_4');
    assert.ok(cut > 0 && reply.includes('## Section 7'));
    await send({ type: 'model', model: { kind: 'ready', name: 'm', contextSize: 32768 } });
    await state([msg('user', 'Explain')], { generating: true });
    const body = page.locator('.message.streaming .body');
    const deltas = (from: number, to: number) => Array.from({ length: Math.ceil((to - from) / 40) }, (_, i) => ({ type: 'delta' as const, conversationId: 'c1', text: reply.slice(from + i * 40, Math.min(to, from + (i + 1) * 40)) }));
    await deliver(page, ...deltas(0, cut));
    await body.locator('h2', { hasText: 'Section 6' }).waitFor({ timeout: 2000 });
    await page.waitForFunction(() => (document.querySelector('.message.streaming .body')?.textContent ?? '').includes('def step_6_0'), undefined, { timeout: 2000 });
    const blocks = body.locator('.code-block');
    assert.equal(await blocks.count(), 6);
    assert.ok(await blocks.nth(2).locator('[class^="hljs-"]').count() > 0, 'a settled block without a language is highlighted (its language detected)');
    assert.equal(await blocks.nth(5).locator('[class^="hljs-"]').count(), 0, 'the block still arriving is not run through language detection on every render');
    await page.evaluate(() => { (document.querySelector('.message.streaming .body h2') as HTMLElement & { marker?: number }).marker = 7; });
    await deliver(page, ...deltas(cut, reply.length));
    await page.waitForFunction((end) => (document.querySelector('.message.streaming .body')?.textContent ?? '').includes(end), reply.trim().split('\n').at(-1)!, { timeout: 2000 });
    assert.equal(await page.evaluate(() => (document.querySelector('.message.streaming .body h2') as HTMLElement & { marker?: number }).marker), 7, 'the settled start was not rendered again');
    assert.equal(await body.locator('.cursor').count(), 1);
    const streamed = (await body.innerText()).trim();
    await state([msg('user', 'Explain'), msg('assistant', reply)]);
    const final = page.locator('.message.assistant .body');
    assert.equal((await final.innerText()).trim(), streamed, 'streamed pieces read as the whole rendered at once');
    assert.equal(await final.locator('.code-block').count(), reply.split('```').length === 1 ? 0 : (reply.split('\n').filter((l) => l.startsWith('```')).length / 2));
    assert.ok(await final.locator('.code-block').nth(5).locator('[class^="hljs-"]').count() > 0, 'the finished message has every block highlighted');
  });

  it('keeps the elements of the messages a state update does not change, and rebuilds the ones it does', async () => {
    const history = [msg('user', 'One'), msg('assistant', 'First **answer**'), msg('user', 'Two'), msg('assistant', 'Second answer')];
    await state(history);
    const mark = () => page.evaluate(() => { document.querySelectorAll('.message').forEach((e, i) => { (e as HTMLElement & { marker?: number }).marker = i; }); });
    const markers = () => page.evaluate(() => [...document.querySelectorAll('.message')].map((e) => (e as HTMLElement & { marker?: number }).marker ?? null));
    await mark();
    await state([...history, msg('user', 'Three'), msg('assistant', 'Third answer')]);
    // The last answer lost its Regenerate button, so it is built again; the ones before are kept.
    assert.deepEqual(await markers(), [0, 1, 2, null, null, null]);
    assert.equal(await page.getByRole('button', { name: 'Regenerate' }).count(), 1);
    await mark();
    await state([...history, msg('user', 'Three'), msg('assistant', 'Third answer'), msg('user', 'Four')], { generating: true });
    // Kept while a reply is generated, except the answer that is no longer last; then the new message and the streaming one.
    assert.deepEqual(await markers(), [0, 1, 2, 3, 4, null, null, null]);
    assert.equal(await page.getByRole('button', { name: 'Edit and resend' }).count(), 0, 'no Edit or Regenerate while a reply is generated');
    assert.equal(await page.getByRole('button', { name: 'Regenerate' }).count(), 0);
  });

  it('shows a thinking model\'s thoughts in a collapsible Thinking block, as plain text, apart from the answer', async () => {
    await send({ type: 'model', model: { kind: 'ready', name: 'qwen3', contextSize: 1000 } });
    await state([msg('user', 'Hi')], { generating: true });
    for (const text of ['The user ', 'greets me. <img src=x onerror="window.__xss=1">']) await send({ type: 'thought', conversationId: 'c1', text });
    const thinking = page.locator('.message.streaming details.thinking');
    await thinking.locator('summary', { hasText: 'Thinking…' }).waitFor({ timeout: 2000 });
    assert.equal(await thinking.evaluate((d) => (d as HTMLDetailsElement).open), true, 'open while only thoughts have arrived');
    assert.match(await thinking.locator('.thoughts').innerText(), /The user greets me\. <img/);
    await send({ type: 'delta', conversationId: 'c1', text: 'Hello **there**' });
    await page.locator('.message.streaming .body strong', { hasText: 'there' }).waitFor({ timeout: 2000 });
    assert.equal(await thinking.evaluate((d) => (d as HTMLDetailsElement).open), false, 'collapses once the answer starts');
    assert.doesNotMatch(await page.locator('.message.streaming .body').innerText(), /greets/);
    const stats = { model: 'qwen3', promptTokens: 9, completionTokens: 20, thoughtTokens: 12, timeToFirstTokenMs: 5, tokensPerSecond: 50, totalMs: 400, stopReason: 'done' as const };
    await state([msg('user', 'Hi'), { ...msg('assistant', 'Hello **there**'), thoughts: 'The user greets me.', stats }]);
    const saved = page.locator('.message.assistant details.thinking');
    assert.equal(await saved.locator('summary').innerText(), 'Thought for 12 tokens');
    assert.equal(await saved.evaluate((d) => (d as HTMLDetailsElement).open), false);
    await saved.locator('summary').click();
    assert.equal(await saved.locator('.thoughts').innerText(), 'The user greets me.');
    assert.match(await page.locator('.message.assistant .stats').innerText(), /20 tokens · 12 thinking/);
    assert.equal(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss), undefined);
  });

  it('sends with Enter, keeps Shift+Enter for new lines, and edits or regenerates', async () => {
    await state([msg('user', 'First'), msg('assistant', 'Answer')]);
    await page.locator('#input').click();
    await page.keyboard.type('line one');
    await page.keyboard.press('Shift+Enter');
    await page.keyboard.type('line two');
    assert.equal((await posted()).filter((m) => m.type === 'send').length, 0);
    await page.keyboard.press('Enter');
    const sent = (await posted()).filter((m) => m.type === 'send');
    assert.deepEqual(sent, [{ type: 'send', conversationId: 'c1', text: 'line one\nline two' }]);
    assert.equal(await page.locator('#input').inputValue(), '');
    await page.getByRole('button', { name: 'Regenerate' }).click();
    await page.getByRole('button', { name: 'Edit and resend' }).click();
    await page.locator('textarea.edit').fill('First, edited');
    await page.locator('textarea.edit').press('Enter');
    const actions = (await posted()).filter((m) => m.type === 'regenerate' || m.type === 'edit');
    assert.deepEqual(actions, [{ type: 'regenerate', conversationId: 'c1' }, { type: 'edit', conversationId: 'c1', index: 0, text: 'First, edited' }]);
  });

  it('offers Retry on a message left without a reply (the model or server failed)', async () => {
    await state([msg('user', 'First'), msg('assistant', 'Answer'), msg('user', 'Unanswered')]);
    assert.equal(await page.getByRole('button', { name: 'Regenerate' }).count(), 0);
    await page.getByRole('button', { name: 'Retry' }).click();
    assert.deepEqual((await posted()).filter((m) => m.type === 'regenerate'), [{ type: 'regenerate', conversationId: 'c1' }]);
  });

  it('switches, renames and deletes conversations', async () => {
    await state([]);
    await page.locator('.conversation', { hasText: 'Second chat' }).locator('.title').click();
    await page.locator('.conversation', { hasText: 'First chat' }).locator('.title').dblclick();
    await page.locator('input.rename').fill('Renamed');
    await page.locator('input.rename').press('Enter');
    const remove = page.locator('.conversation').nth(1).getByRole('button', { name: 'Delete' });
    await remove.click();
    assert.equal((await posted()).filter((m) => m.type === 'deleteConversation').length, 0, 'the first click only arms');
    await page.locator('.conversation').nth(1).locator('button.armed').click();
    await page.locator('#new-chat').click();
    const ops = (await posted()).filter((m) => /Conversation$/.test(String(m.type)));
    assert.deepEqual(ops, [
      { type: 'switchConversation', conversationId: 'c2' },
      { type: 'renameConversation', conversationId: 'c1', title: 'Renamed' },
      { type: 'deleteConversation', conversationId: 'c2' },
      { type: 'newConversation' },
    ]);
  });

  it('renders markdown with highlighted code blocks and their Copy / Insert / Open buttons', async () => {
    const code = 'def add(a, b):\n    return a + b  # <b>not bold</b>';
    await state([msg('user', 'code please'), msg('assistant', `Here:\n\n\`\`\`python\n${code}\n\`\`\`\n\n| a | b |\n|---|---|\n| 1 | 2 |`)]);
    const block = page.locator('.code-block');
    assert.equal(await block.getAttribute('data-language'), 'python');
    assert.ok(await block.locator('.hljs-keyword').count() > 0, 'highlighted');
    assert.equal(await page.locator('.message.assistant table td').count(), 2);
    for (const name of ['Copy', 'Insert at cursor', 'Open in new editor']) await block.getByRole('button', { name }).click();
    const actions = (await posted()).filter((m) => m.type === 'code');
    assert.deepEqual(actions.map((a) => a.action), ['copy', 'insert', 'open']);
    for (const a of actions) { assert.equal(a.code, code); assert.equal(a.language, 'python'); }
  });

  it('renders every XSS payload inert: no script runs, nothing loads', async () => {
    await state([msg('user', XSS.join('\n\n')), msg('assistant', XSS.join('\n\n'))]);
    await page.waitForTimeout(300);
    await assertInert();
  });

  it('renders every XSS payload inert while it streams, cut at any point', async () => {
    const text = XSS.join('\n\n');
    await state([msg('user', 'go')], { generating: true });
    for (let i = 0; i < text.length; i += 5) {
      await send({ type: 'delta', conversationId: 'c1', text: text.slice(i, i + 5) });
      if (i % 60 === 0) await page.waitForTimeout(60); // a render (every 50 ms) at many cut points
    }
    await page.waitForFunction(() => (document.querySelector('.message.streaming .body')?.textContent ?? '').includes('__xss = 11'), undefined, { timeout: 2000 });
    await assertInert();
  });

  async function assertInert(): Promise<void> {
    const report = await page.evaluate(() => {
      const root = document.getElementById('messages')!;
      const all = [...root.querySelectorAll('*')];
      return {
        xss: (window as unknown as { __xss?: number }).__xss,
        dangerous: all.filter((e) => /^(SCRIPT|IMG|IFRAME|SVG|STYLE|OBJECT|EMBED|FORM)$/i.test(e.tagName)).map((e) => e.tagName),
        handlers: all.flatMap((e) => [...e.attributes].filter((a) => /^on/i.test(a.name)).map((a) => `${e.tagName}.${a.name}`)),
        styled: all.filter((e) => e.hasAttribute('style')).length,
        hrefs: [...root.querySelectorAll('a[href]')].map((a) => a.getAttribute('href')),
        text: root.innerText,
      };
    });
    assert.equal(report.xss, undefined, 'a payload ran');
    assert.deepEqual(report.dangerous, []);
    assert.deepEqual(report.handlers, []);
    assert.equal(report.styled, 0);
    for (const href of report.hrefs) assert.match(href!, /^(https?:|mailto:|#)/, `link ${href}`);
    assert.match(report.text, /<script>window.__xss = 1<\/script>/, 'raw HTML is shown as text');
    await page.locator('.message.assistant a').first().click({ trial: true }).catch(() => undefined);
    assert.deepEqual(external, [], `external requests: ${external.join(', ')}`);
  }

  it('drops malformed messages from the host and keeps working', async () => {
    const warnings: string[] = [];
    page.on('console', (m) => { if (m.type() === 'warning') warnings.push(m.text()); });
    await deliver(page, { type: 'delta' }, { type: 'bogus', x: 1 }, 'not even an object', { type: 'state', activeId: 'c1', messages: [{ role: 'hacker', content: 1 }] });
    await state([msg('user', 'still works')]);
    assert.match(await page.locator('.message.user').innerText(), /still works/);
    assert.equal(warnings.filter((w) => /dropped a malformed message/.test(w)).length, 4, warnings.join('\n'));
    assert.deepEqual(await violations(page), [], 'the page itself obeys its CSP');
  });
});
