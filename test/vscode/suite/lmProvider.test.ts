import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import { toConversation } from '../../../src/vscode/lmProvider';
import { host, mostAtOnce, nanochatLogTail, token, type Api } from './helpers';

/**
 * A second start of the same VS Code profile, after the main suites: what a user's every start is.
 * The compile cache (and the remembered backend, with gpu: auto) are on disk from the first start.
 */
export function defineWarmStartTests(): void {
  describe('a second start of the same profile (warm start)', () => {
    it('loads the selected model in the background, with node-llama-cpp compiled from the cache the first start wrote', async () => {
      const api = host.api;
      const cacheDir = (require('node:module') as { getCompileCacheDir?: () => string | undefined }).getCompileCacheDir?.();
      assert.ok(cacheDir, 'the compile cache is on');
      // Written by an earlier start: entries older than this extension host.
      const startedAt = Date.now() - process.uptime() * 1000;
      const entries = fs.readdirSync(cacheDir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
      assert.ok(entries.some((e) => fs.statSync(path.join(e.parentPath, e.name)).mtimeMs < startedAt), `compile cache ${cacheDir} from an earlier start`);
      const deadline = Date.now() + 60_000;
      while ((api.services.models.state.kind !== 'ready' || api.bench.startupBlocks === undefined) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.equal(api.services.models.state.kind, 'ready', 'the selected model loaded on startup');
      assert.ok(api.bench.readyMs !== undefined && api.bench.activationMs !== undefined && api.bench.readyMs > api.bench.activationMs);
      // The start's blocks, told apart: the collector's and the scheduler's are taken out of the code's own.
      const blocks = api.bench.startupBlocks!;
      assert.ok(blocks.longestMs > 0 && blocks.longestOwnMs <= blocks.longestLessGcMs && blocks.longestLessGcMs <= blocks.longestMs, JSON.stringify(blocks));
      assert.match(nanochatLogTail(400), /The start's longest event-loop block, \d+ ms: \d+ ms less garbage collection/);
      const phases = api.services.models.state.kind === 'ready' ? api.services.models.state.info.loadPhases : {};
      assert.ok(phases && 'import' in phases && 'weights' in phases, `load phases ${JSON.stringify(phases)}`);
      assert.ok(api.bench.startupCpuMs !== undefined && api.bench.startupCpuMs > 0, 'the CPU time of the start is measured');
      // node-llama-cpp's ~400 modules were imported one at a time, with the event loop running between them.
      assert.match(nanochatLogTail(400), /llama\.cpp ready in .*node-llama-cpp imported module by module \(\d{3,}, only those that define what nanochat uses; the longest, \d+ ms, [\w.-]+\.js\)/);
      console.log(`      ${/the longest, \d+ ms, [\w.-]+\.js/.exec(nanochatLogTail(400))?.[0]} (of node-llama-cpp's modules imported one at a time)`);
      console.log(`      the longest event-loop block of each phase: ${JSON.stringify(api.services.models.state.kind === 'ready' ? api.services.models.state.info.loadPhaseBlocks : {})}`);
      console.log(`      warm start: activated in ${Math.round(api.bench.activationMs!)} ms, model ready ${Math.round(api.bench.readyMs!)} ms after activation began (extension host CPU ${Math.round(api.bench.startupCpuMs!)} ms), longest event-loop block meanwhile ${Math.round(api.bench.startupMaxBlockMs ?? -1)} ms (${JSON.stringify(phases)})`);
      console.log(`      the start's blocks told apart: longest ${Math.round(blocks.longestMs)} ms, ${Math.round(blocks.longestLessGcMs)} ms less garbage collection (longest collection ${Math.round(blocks.longestGcMs)} ms), ${Math.round(blocks.longestOwnMs)} ms less that and waiting for a CPU`);
    });
  });
}

export function defineLanguageModelTests(): void {
  describe('the model provider (vscode.lm) in the real extension host', () => {
    let api: Api;
    const model = host.model;
    before(() => { api = host.api; });

    it('activates without waiting for the model, loads it in the background (warm start), and registers its commands', async () => {
      assert.ok(model && fs.existsSync(model), `fixture model ${model}`);
      assert.equal(api.services.settings.current.model, model);
      assert.equal(api.participant.participant.id, 'nanochat.chat');
      const commands = await vscode.commands.getCommands(true);
      for (const c of ['openChatPanel', 'downloadModel', 'useLocalModel', 'selectModel', 'unloadModel', 'countTokens', 'runBenchmark', 'showLogs']) {
        assert.ok(commands.includes(`nanochat.${c}`), `command nanochat.${c}`);
      }
      assert.equal(api.statusBar.history[0], '$(hubot) stories260K', 'the selected model is shown before it loads');
      for (const c of ['buildLlamaCpp']) assert.ok(commands.includes(`nanochat.${c}`), `command nanochat.${c}`);
      // nanochat.loadOnStartup: no request has been made, yet the model comes ready on its own.
      const deadline = Date.now() + 60_000;
      while ((api.services.models.state.kind !== 'ready' || api.bench.startupMaxBlockMs === undefined) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.equal(api.services.models.state.kind, 'ready', 'the selected model loaded on startup');
      assert.ok(api.bench.readyMs !== undefined && api.bench.activationMs !== undefined && api.bench.readyMs > api.bench.activationMs, `activation ${api.bench.activationMs} ms, ready ${api.bench.readyMs} ms`);
      assert.ok(api.bench.startupMaxBlockMs !== undefined && api.bench.startupMaxBlockMs > 0, 'the event loop was watched while the model loaded');
      console.log(`      first start (backend known, compile cache empty in a fresh clone): activated in ${Math.round(api.bench.activationMs!)} ms, model ready ${Math.round(api.bench.readyMs!)} ms after activation began (extension host CPU ${Math.round(api.bench.startupCpuMs ?? -1)} ms), longest event-loop block meanwhile ${Math.round(api.bench.startupMaxBlockMs ?? -1)} ms (${JSON.stringify(api.services.models.state.kind === 'ready' ? api.services.models.state.info.loadPhases : {})})`);
      console.log(`      the longest event-loop block of each phase: ${JSON.stringify(api.services.models.state.kind === 'ready' ? api.services.models.state.info.loadPhaseBlocks : {})}`);
      assert.ok(api.statusBar.history.some((t) => /loading/.test(t)), `status bar: ${api.statusBar.history.join(' | ')}`);
      // node-llama-cpp's modules were compiled through Node.js's compile cache, which is on disk for the next start.
      const cacheDir = (require('node:module') as { getCompileCacheDir?: () => string | undefined }).getCompileCacheDir?.();
      assert.ok(cacheDir && fs.readdirSync(cacheDir).length > 0, `compile cache ${cacheDir}`);
    });

    it('offers the local model through vscode.lm and streams real model text', async () => {
      const models = await vscode.lm.selectChatModels({ vendor: 'nanochat' });
      assert.ok(models.length >= 1, `got ${models.length} models`);
      const chat = models[0];
      assert.equal(chat.vendor, 'nanochat');
      assert.ok(chat.maxInputTokens > 100 && chat.maxInputTokens <= 1024, `maxInputTokens ${chat.maxInputTokens}`);
      const response = await chat.sendRequest([vscode.LanguageModelChatMessage.User('Once upon a time')], {}, token());
      let text = '';
      let chunks = 0;
      for await (const t of response.text) { text += t; chunks++; }
      assert.ok(text.trim().length > 20 && chunks > 3, `streamed ${chunks} chunks: ${JSON.stringify(text)}`);
      assert.equal(api.services.models.state.kind, 'ready');
      assert.ok(api.statusBar.history.some((t) => /loading/.test(t)), `status bar: ${api.statusBar.history.join(' | ')}`);
      assert.ok(api.statusBar.history.some((t) => /generating/.test(t)), `status bar: ${api.statusBar.history.join(' | ')}`);
      assert.match(api.statusBar.text, /hubot/);
      const count = await chat.countTokens('Once upon a time');
      const exact = api.services.models.model!.model.tokenize('Once upon a time', false).length;
      assert.equal(count, exact);
    });

    it('"Nanochat: Show Prompt" opens exactly what the model evaluated for the last reply', async () => {
      const [chat] = await vscode.lm.selectChatModels({ vendor: 'nanochat' });
      const response = await chat.sendRequest([vscode.LanguageModelChatMessage.User('The little dog ran to the park')], {}, token());
      for await (const _ of response.text) { /* drain */ }
      const prompt = await vscode.commands.executeCommand<{ text: string; tokens: number[]; chatFormat: string }>('nanochat.showPrompt');
      assert.ok(prompt, 'a prompt to show');
      assert.ok(prompt.text.includes('The little dog ran to the park'), prompt.text);
      const loaded = api.services.models.model!;
      assert.equal(prompt.chatFormat.split(',')[0], loaded.info.chatFormat);
      assert.equal(prompt.text, loaded.model.detokenize(prompt.tokens as never, true), 'the text shown is the ids shown');
      assert.deepEqual(prompt, await api.services.backend.lastPrompt(), 'the prompt of the reply just made');
      const editor = vscode.window.activeTextEditor!;
      assert.ok(editor.document.isUntitled && editor.document.getText().includes(prompt.text), 'opened in an editor');
      assert.ok(editor.document.getText().includes(JSON.stringify(prompt.tokens)));
      await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
    });

    it('takes tools: answers in text when none is called, and continues after tool results', async () => {
      const [chat] = await vscode.lm.selectChatModels({ vendor: 'nanochat' });
      const tools: vscode.LanguageModelChatTool[] = [{ name: 'getWeather', description: 'Weather of a city', inputSchema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];
      const plain = await chat.sendRequest([vscode.LanguageModelChatMessage.User('Once upon a time')], { tools }, token());
      let text = '';
      for await (const part of plain.stream) if (part instanceof vscode.LanguageModelTextPart) text += part.value;
      assert.ok(text.length > 0);

      const history = [
        vscode.LanguageModelChatMessage.User('What is the weather in Paris?'),
        vscode.LanguageModelChatMessage.Assistant([new vscode.LanguageModelToolCallPart('call-1', 'getWeather', { city: 'Paris' })]),
        vscode.LanguageModelChatMessage.User([new vscode.LanguageModelToolResultPart('call-1', [new vscode.LanguageModelTextPart('sunny, 21 C')])]),
      ];
      const conversation = toConversation(history);
      assert.deepEqual(conversation.messages.map((m) => m.role), ['user', 'assistant']);
      assert.deepEqual(conversation.messages[1].toolCalls, [{ id: 'call-1', name: 'getWeather', params: { city: 'Paris' }, result: 'sunny, 21 C' }]);
      const continued = await chat.sendRequest(history, { tools }, token());
      let after = '';
      for await (const part of continued.stream) if (part instanceof vscode.LanguageModelTextPart) after += part.value;
      assert.ok(after.length > 0, 'the model continued after the tool result');
    });

    it('stops generating when the request is cancelled', async () => {
      const [chat] = await vscode.lm.selectChatModels({ vendor: 'nanochat' });
      const source = new vscode.CancellationTokenSource();
      const long = { ...api.services.settings.current };
      await vscode.workspace.getConfiguration('nanochat').update('maxTokens', 2000, vscode.ConfigurationTarget.Global);
      try {
        const response = await chat.sendRequest([vscode.LanguageModelChatMessage.User('Once upon a time there was a dragon')], {}, source.token);
        let text = '';
        for await (const t of response.text) {
          text += t;
          if (text.length > 30) source.cancel();
        }
        const outputTokens = api.services.models.model!.model.tokenize(text, false).length;
        assert.ok(outputTokens < 1500, `${outputTokens} tokens came after cancelling`);
      } catch (err) {
        assert.ok(err instanceof vscode.CancellationError || /cancel/i.test(String(err)), String(err));
      } finally {
        await vscode.workspace.getConfiguration('nanochat').update('maxTokens', long.maxTokens, vscode.ConfigurationTarget.Global);
      }
      // The next request works normally.
      const again = await chat.sendRequest([vscode.LanguageModelChatMessage.User('The cat')], {}, token());
      let text = '';
      for await (const t of again.text) text += t;
      assert.ok(text.length > 0);
    });

    it('runs two requests that open with the same message at once (no thread is keyed by its text)', async () => {
      const [chat] = await vscode.lm.selectChatModels({ vendor: 'nanochat' });
      const ask = async () => {
        const response = await chat.sendRequest([vscode.LanguageModelChatMessage.User('Hello')], {}, token());
        let text = '';
        for await (const t of response.text) text += t;
        return text;
      };
      let texts: string[] = [];
      const most = await mostAtOnce(async () => { texts = await Promise.all([ask(), ask()]); });
      assert.equal(most, 2, 'both requests generated at the same time');
      assert.equal(texts[0], texts[1]);
      assert.ok(texts[0].length > 0);
    });
  });
}
