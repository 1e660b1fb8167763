// UI end-to-end: the Chat view of a real VS Code in headless Chromium. Selects the nanochat model
// in the picker, sends "@nanochat Once upon a time", waits for streamed story text and the stats
// footer, and saves test-results/chat-view.png. Prints "N passed, N failed".
import path from 'node:path';
import { testModel } from '../support/models.ts';
import { askNanochat, launchWorkbench, results } from './workbench.mjs';

const model = await testModel('stories260K.gguf');
const { page, log, finish, runCommand } = await launchWorkbench(
  { 'nanochat.model': model, 'nanochat.threads': 1, 'nanochat.gpu': 'off', 'nanochat.maxTokens': 64, 'nanochat.temperature': 0 },
  { statusText: 'stories260K' },
);
try {
  const text = await askNanochat(page, runCommand, log, 'stories260K', 'Once upon a time');
  await page.screenshot({ path: path.join(results, 'chat-view.png') });
  log('screenshot', path.join(results, 'chat-view.png'));
  const story = text.replace(/\d+ tokens ·.*$/s, '').trim();
  await finish(story.split(/\s+/).length >= 8 && !/unavailable|could not answer/i.test(text), `reply: ${JSON.stringify(text.slice(0, 300))}`, 'chat-view-failure.png');
} catch (err) {
  console.error(err);
  await finish(false, '', 'chat-view-failure.png');
}
