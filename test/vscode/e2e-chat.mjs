// UI end-to-end: the Chat view of a real VS Code in headless Chromium. Selects the nanochat model
// in the picker, sends "@nanochat Once upon a time", waits for streamed story text and the stats
// footer, and saves test-results/chat-view.png. Prints "N passed, N failed".
import path from 'node:path';
import { testModel } from '../support/models.ts';
import { launchWorkbench, results } from './workbench.mjs';

const model = await testModel('stories260K.gguf');
const { page, log, finish, runCommand } = await launchWorkbench(
  { 'nanochat.model': model, 'nanochat.threads': 1, 'nanochat.gpu': 'off', 'nanochat.maxTokens': 64, 'nanochat.temperature': 0 },
  { statusText: 'stories260K' },
);
try {
  const input = page.locator('.interactive-input-part .chat-input-container').first();
  if (!(await input.isVisible().catch(() => false))) await runCommand('Chat: Open Chat');
  await input.waitFor({ timeout: 30_000 });
  // VS Code attaches a model to every chat request: pick ours in the picker first.
  for (let i = 0; i < 20 && !(await input.getByText('stories260K').first().isVisible().catch(() => false)); i++) {
    await input.getByText(/Models|Auto|GPT|Claude|Nanochat/).first().click({ force: true, timeout: 1000 }).catch(() => {});
    const item = page.locator('.action-widget').getByText('stories260K').first();
    if (await item.waitFor({ timeout: 1500 }).then(() => true, () => false)) await item.click(); else await page.keyboard.press('Escape');
  }
  log('model selected');
  // The input editor takes keystrokes only once the view has settled: type until the text shows.
  for (let attempt = 0; attempt < 10; attempt++) {
    await input.locator('.monaco-editor').first().click({ force: true });
    await page.keyboard.press('Control+A');
    await page.keyboard.press('Backspace');
    await page.keyboard.type('@nanochat Once upon a time', { delay: 15 });
    if (/Once upon a time/.test(await input.innerText().catch(() => ''))) break;
    await page.waitForTimeout(1500);
  }
  await page.keyboard.press('Enter');
  const response = page.locator('.interactive-response').last();
  await response.waitFor({ timeout: 60_000 });
  await response.getByText(/tok\/s/).first().waitFor({ timeout: 90_000 });
  const text = (await response.innerText()).trim();
  await page.screenshot({ path: path.join(results, 'chat-view.png') });
  log('screenshot', path.join(results, 'chat-view.png'));
  const story = text.replace(/\d+ tokens ·.*$/s, '').trim();
  await finish(story.split(/\s+/).length >= 8 && !/unavailable|could not answer/i.test(text), `reply: ${JSON.stringify(text.slice(0, 300))}`, 'chat-view-failure.png');
} catch (err) {
  console.error(err);
  await finish(false, '', 'chat-view-failure.png');
}
