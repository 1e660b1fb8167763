import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import type { TokenBias } from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import { importNodeLlamaCpp } from '../../../src/core/engine/llama';
import { host, noHistory, recordingStream, request, type Api } from './helpers';

/**
 * @nanochat as an agent with a template-true Qwen2.5 (real vocabulary, its own template with tool
 * calls, one layer of random weights): each agent step's tool call is forced through token bias up to
 * the tool's name (node-llama-cpp's grammar then writes the arguments); everything else — VS Code
 * running the tool, the loop, the prompt — is real.
 */
export function defineAgentTests(): void {
  describe('@nanochat as a local agent (a template-true Qwen2.5)', () => {
    let api: Api;
    const config = () => vscode.workspace.getConfiguration('nanochat');
    const barred = new WeakMap<object, TokenBias>();

    before(async function () {
      this.timeout(120_000);
      api = host.api;
      await config().update('model', process.env.NANOCHAT_TEST_AGENT_MODEL, vscode.ConfigurationTarget.Global);
      const lease = await api.services.models.acquire();
      lease.dispose();
      assert.equal(lease.model.info.chatTemplate, 'with tools');
    });
    after(async function () {
      this.timeout(120_000);
      api.participant.hooks.steer = undefined;
      await config().update('agent.maxSteps', undefined, vscode.ConfigurationTarget.Global);
      await config().update('model', host.model, vscode.ConfigurationTarget.Global);
      const lease = await api.services.models.acquire();
      lease.dispose();
    });

    /** Per agent step: a tool to call (forced up to its name), or a text the model writes whole before its turn ends. */
    async function steer(steps: Array<{ call: string } | { text: string }>): Promise<void> {
      const { TokenBias } = await importNodeLlamaCpp();
      const lease = await api.services.models.acquire();
      lease.dispose();
      const model = lease.model.model;
      // After a text, only the end of the turn (made once per loaded model: the model reloads when the context changes).
      let barredAfterScript = barred.get(model);
      if (!barredAfterScript) {
        const [endOfTurn] = model.tokenize('<|im_end|>', true);
        barredAfterScript = new TokenBias(model.tokenizer);
        for (const t of model.iterateAllTokens()) if (t !== endOfTurn) barredAfterScript.set(t, 'never');
        barred.set(model, barredAfterScript);
      }
      const afterText = barredAfterScript;
      api.participant.hooks.steer = (step) => {
        const plan = steps[Math.min(step, steps.length - 1)];
        const script = model.tokenize('call' in plan ? `<tool_call>\n{"name": "${plan.call}` : plan.text, false);
        // After a tool's name, the grammar writes its arguments: these tokens close them as soon as it allows
        // (an empty string, the end of the object; the grammar itself then ends the call).
        const closing = new TokenBias(model.tokenizer);
        // A quote first (it ends a string, even one the grammar lets hold a brace), then a brace.
        for (const [text, logit] of [['"', 1000], ['}', 500]] as const) for (const t of model.tokenize(text, false)) closing.set(t, { logit });
        let i = 0;
        return () => {
          if (i >= script.length) return 'call' in plan ? closing : afterText;
          const bias = new TokenBias(model.tokenizer);
          bias.set(script[i++], { logit: 1000 });
          return bias;
        };
      };
    }

    it('runs the tools the model calls through VS Code (vscode.lm.invokeTool), feeds the results back, and answers', async () => {
      // listFolder: its only argument is optional, so random weights under the grammar close the call at once.
      await steer([{ call: 'nanochat_listFolder' }, { text: 'The workspace holds sample.py.' }]);
      const rec = recordingStream();
      const result = await api.participant.handler(request('What is in this workspace?'), noHistory, rec.stream, new vscode.CancellationTokenSource().token);
      assert.ok(rec.progress.some((p) => /^Step 1: nanochat_listFolder\(/.test(p)), `${rec.progress.join(' | ')} / ${rec.text()}`);
      assert.match(rec.text(), /The workspace holds sample\.py\./);
      // The second step's prompt holds the folder's listing (the grammar wrote an empty path: the workspace's top), in the model's format.
      const prompt = await api.services.backend.lastPrompt();
      assert.match(prompt!.text.slice(prompt!.text.lastIndexOf('</tools>')), /<tool_call>\n\{"name": "nanochat_listFolder", "arguments": \{.*?\}\}\n<\/tool_call><\|im_end\|>\n<\|im_start\|>user\n<tool_response>\n\. \(\d+ entr(y|ies)\):\n(.*\n)*sample\.py\n/);
      const stats = (result as vscode.ChatResult).metadata?.nanochat?.stats;
      assert.ok(stats && stats.evaluatedPromptTokens < stats.promptTokens / 2,
        `the tools preamble is byte-identical between steps, so its KV cache is reused: ${stats?.evaluatedPromptTokens} of ${stats?.promptTokens} evaluated`);
    });

    it('stops at nanochat.agent.maxSteps and says so', async () => {
      await config().update('agent.maxSteps', 1, vscode.ConfigurationTarget.Global);
      // Room for two steps of random text and tool results.
      const maxTokens = config().inspect<number>('maxTokens')?.globalValue;
      const contextSize = config().inspect<number>('contextSize')?.globalValue;
      await config().update('maxTokens', 160, vscode.ConfigurationTarget.Global);
      await config().update('contextSize', 4096, vscode.ConfigurationTarget.Global);
      try {
        await steer([{ call: 'nanochat_listFolder' }]);
        const rec = recordingStream();
        await api.participant.handler(request('List every folder, forever'), noHistory, rec.stream, new vscode.CancellationTokenSource().token);
        const steps = new Set(rec.progress.map((p) => /^Step (\d+)/.exec(p)?.[1]).filter(Boolean));
        assert.deepEqual([...steps], ['1'], rec.progress.join(' | '));
        assert.match(rec.text(), /Stopped after 1 tool step \(nanochat\.agent\.maxSteps\)/);
      } finally {
        await config().update('agent.maxSteps', undefined, vscode.ConfigurationTarget.Global);
        await config().update('maxTokens', maxTokens, vscode.ConfigurationTarget.Global);
        await config().update('contextSize', contextSize, vscode.ConfigurationTarget.Global);
      }
    });

    it('Stop ends the loop at the step it is in', async () => {
      await steer([{ call: 'nanochat_listFolder' }]);
      const rec = recordingStream();
      const cancel = new vscode.CancellationTokenSource();
      const original = rec.stream.progress.bind(rec.stream);
      (rec.stream as { progress: (v: string) => void }).progress = (v: string) => { original(v); if (/^Step 1/.test(v)) cancel.cancel(); };
      await api.participant.handler(request('List the folders'), noHistory, rec.stream, cancel.token);
      assert.ok(rec.progress.every((p) => !/^Step [2-9]/.test(p)), rec.progress.join(' | '));
    });

    it('its own workspace tools read, list, find and search inside the workspace only', async () => {
      const invoke = async (name: string, input: object) => {
        const r = await vscode.lm.invokeTool(name, { input, toolInvocationToken: undefined }, new vscode.CancellationTokenSource().token);
        return r.content.map((p) => (p instanceof vscode.LanguageModelTextPart ? p.value : '')).join('');
      };
      assert.equal(await invoke('nanochat_readFile', { path: 'sample.py', startLine: 2, endLine: 2 }), 'sample.py, lines 2-2 of 3:\n    """Add two numbers."""');
      assert.equal(await invoke('nanochat_readFile', { path: 'sample.py' }), 'sample.py, lines 1-3 of 3:\ndef add(a, b):\n    """Add two numbers."""\n    return a + b');
      assert.match(await invoke('nanochat_listFolder', {}), /^sample\.py$/m);
      assert.match(await invoke('nanochat_findFiles', { pattern: '**/*.py' }), /^sample\.py$/m);
      assert.equal(await invoke('nanochat_searchText', { query: 'two numbers', include: 'sample.py' }), 'sample.py:2: """Add two numbers."""');
      assert.match(await invoke('nanochat_readFile', { path: '../../etc/passwd' }), /^Error: .*outside the workspace/);
      assert.match(await invoke('nanochat_readFile', { path: '/etc/passwd' }), /^Error: .*outside the workspace/);
      assert.match(await invoke('nanochat_searchText', { query: '(', isRegexp: true }), /^Error: Not a valid regular expression/);
      // A link inside the workspace that points out of it is refused too.
      const folder = vscode.workspace.workspaceFolders![0].uri.fsPath;
      fs.symlinkSync('/etc/hostname', path.join(folder, 'escape.txt'));
      try {
        assert.match(await invoke('nanochat_readFile', { path: 'escape.txt' }), /^Error: .*outside the workspace/);
        assert.doesNotMatch(await invoke('nanochat_searchText', { query: 'a', include: 'escape.txt' }), /escape\.txt:/);
      } finally {
        fs.rmSync(path.join(folder, 'escape.txt'));
      }
    });

    it('a tool that asks first (nanochat_writeFile) shows VS Code\'s confirmation in the Chat view, and runs only once accepted', async function () {
      this.timeout(120_000);
      await steer([{ call: 'nanochat_writeFile' }, { text: 'Done.' }]);
      const steerFor = api.participant.hooks.steer!;
      let started = 0;
      api.participant.hooks.steer = (step) => { started++; return steerFor(step); };
      const from = api.toolActivity.length;
      const prompt = 'Create a notes file for me';
      const handled = new Promise<{ text: string }>((resolve) => {
        const sub = api.participant.onDidHandle((h) => { if (h.prompt.includes(prompt)) { sub.dispose(); resolve(h); } });
      });
      // Sent through the real Chat view: the request carries a toolInvocationToken, so VS Code asks the user.
      for (let attempt = 0; attempt < 10 && started === 0; attempt++) {
        await vscode.commands.executeCommand('workbench.action.chat.open', { query: `@nanochat ${prompt}` });
        for (let i = 0; i < 30 && started === 0; i++) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(started > 0, 'the participant got the request');
      const ours = () => api.toolActivity.slice(from).filter((a) => a.tool === 'nanochat_writeFile');
      for (let i = 0; i < 300 && !ours().some((a) => a.phase === 'prepare'); i++) await new Promise((r) => setTimeout(r, 100));
      assert.ok(ours().some((a) => a.phase === 'prepare'), 'VS Code prepared the call (and its confirmation)');
      await new Promise((r) => setTimeout(r, 1000));
      assert.ok(!ours().some((a) => a.phase === 'invoke'), 'nothing is written while the confirmation waits');
      await vscode.commands.executeCommand('workbench.action.chat.acceptTool');
      const h = await Promise.race([handled, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 60_000))]);
      assert.notEqual(h, 'timeout', 'the loop went on once the user accepted');
      assert.ok(ours().some((a) => a.phase === 'invoke'), 'accepted, the tool ran');
      assert.match((h as { text: string }).text, /Done\./);
    });

    it('refuses a request that cannot fit with nanochat\'s message and the next step, not llama.cpp\'s error', async () => {
      api.participant.hooks.steer = undefined;
      const rec = recordingStream();
      await api.participant.handler(request(`Summarise: ${'lorem ipsum dolor '.repeat(400)}`), noHistory, rec.stream, new vscode.CancellationTokenSource().token);
      assert.match(rec.text(), /nanochat could not answer.*The prompt needs \d+ tokens with the schemas of \d+ tools?, but only \d+ fit .* Offer fewer tools or raise nanochat\.contextSize/s);
    });
  });

  describe('a thinking model in the Chat view (a template-true Qwen3)', () => {
    let api: Api;
    const config = () => vscode.workspace.getConfiguration('nanochat');
    before(async function () {
      this.timeout(120_000);
      api = host.api;
      await config().update('model', process.env.NANOCHAT_TEST_THINKING_MODEL, vscode.ConfigurationTarget.Global);
    });
    after(async function () {
      this.timeout(120_000);
      api.participant.hooks.steer = undefined;
      await config().update('model', host.model, vscode.ConfigurationTarget.Global);
      const lease = await api.services.models.acquire();
      lease.dispose();
    });

    it('shows "Thinking…" while the model thinks, then only the answer; the footer counts the thoughts apart', async () => {
      const { TokenBias } = await importNodeLlamaCpp();
      const lease = await api.services.models.acquire();
      lease.dispose();
      const model = lease.model.model;
      const script = model.tokenize('<think>\nThe user greets me.\n</think>\n\nHello there!', true);
      const [endOfTurn] = model.tokenize('<|im_end|>', true);
      const end = new TokenBias(model.tokenizer);
      for (const t of model.iterateAllTokens()) if (t !== endOfTurn) end.set(t, 'never');
      api.participant.hooks.steer = () => {
        let i = 0;
        return () => {
          if (i >= script.length) return end;
          const bias = new TokenBias(model.tokenizer);
          bias.set(script[i++], { logit: 1000 });
          return bias;
        };
      };
      const rec = recordingStream();
      await api.participant.handler(request('Hi'), noHistory, rec.stream, new vscode.CancellationTokenSource().token);
      assert.ok(rec.progress.includes('Thinking…'), rec.progress.join(' | '));
      assert.match(rec.text(), /Hello there!/);
      assert.doesNotMatch(rec.text(), /greets/, 'thoughts are not the answer');
      assert.match(rec.text(), /\d+ tokens · \d+ thinking ·/);
    });
  });
}
