import assert from 'node:assert/strict';
import type { ChatReply, ReplyStats } from '../../src/core/chat/engine';
import { ServerBackend, ServerError, type ServerState } from '../../src/core/server/serverBackend';
import type { Settings } from '../../src/core/settings';
import { TokenCounter } from '../../src/core/tokens/tokenCounter';
import { FaultServer } from '../support/faultServer';
import { LlamaServer, freePort } from '../support/llamaServer';
import { testModel } from '../support/models';
import { testSettings } from '../support/settings';
import { likeModel } from '../support/likeModels';
import { CompletionEngine } from '../../src/core/completion/completionEngine';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { benchReportSchema } from '../../src/core/bench/schema';
import { benchRows } from '../../src/core/bench/report';
import { assertOneLineFailure } from '../support/cli';
import { REPO_ROOT } from '../support/models';

const run = promisify(execFile);
const benchCli = ['--import', 'tsx', path.join(REPO_ROOT, 'tools', 'cli', 'bench.ts')];

async function collect(reply: ChatReply, onText?: (text: string) => void): Promise<{ text: string; deltas: number; stats: ReplyStats }> {
  let text = '';
  let deltas = 0;
  for await (const d of reply) { text += d; deltas++; onText?.(text); }
  return { text, deltas, stats: await reply.stats };
}

const user = (content: string) => ({ role: 'user' as const, content });

describe('server backend against a real llama-server (loopback, --parallel 4)', function () {
  this.timeout(20 * 60_000); // the first run on a machine builds llama-server (about 8 minutes)
  let model: string;
  let server: LlamaServer;
  let settings: Settings;
  let backend: ServerBackend;
  const states: ServerState[] = [];

  before(async () => {
    model = await testModel('stories260K-chatml.gguf');
    server = await new LlamaServer(model).start();
    settings = testSettings({ backend: 'server', 'server.url': server.url });
    backend = new ServerBackend({ settings: () => settings });
    backend.onDidChangeState((s) => states.push(s));
  });
  after(async () => { backend?.dispose(); await server?.stop(); });
  beforeEach(function () { this.timeout(120_000); });

  it('lists the server\'s model with the context a request gets, and reports connected with its latency', async () => {
    const models = await backend.refresh();
    assert.equal(models.length, 1);
    assert.equal(models[0].name, 'stories260K-chatml');
    assert.equal(models[0].contextSize, 1024, 'llama-server\'s /props: 4096 tokens over 4 slots');
    assert.equal(backend.selectedModel()?.id, models[0].id);
    const state = backend.state;
    assert.equal(state.kind, 'connected');
    assert.ok(state.kind === 'connected' && state.latencyMs >= 0 && state.model === models[0].id);
  });

  it('says plainly when the server\'s model cannot complete code inline (/infill refused)', async () => {
    await assert.rejects(backend.infill({ prefix: 'x = ', suffix: '', path: 'a.py' }, { maxTokens: 8 }, new AbortController().signal),
      /no inline completion .*fill-in-the-middle tokens, such as Qwen2\.5-Coder/);
  });

  it('streams a reply through the openai client with the server\'s usage and timings, and counts tokens exactly as the embedded engine', async () => {
    const { text, deltas, stats } = await collect(backend.reply({ messages: [user('Once upon a time')] }));
    assert.ok(text.trim().length > 20 && deltas > 3, `${deltas} deltas: ${JSON.stringify(text)}`);
    assert.equal(stats.model, 'stories260K-chatml');
    assert.ok(stats.promptTokens > 5 && stats.completionTokens > 0 && stats.completionTokens <= settings.maxTokens, JSON.stringify(stats));
    assert.ok(stats.tokensPerSecond > 0 && stats.timeToFirstTokenMs! <= stats.totalMs);
    assert.ok(['done', 'maxTokens'].includes(stats.stopReason));
    const counter = new TokenCounter();
    try {
      for (const sample of ['Once upon a time', 'def add(a, b):\n    return a + b  # 😀 你好', '']) {
        const viaServer = await backend.countTokens(sample);
        assert.equal(viaServer.engine, 'server');
        assert.equal(viaServer.tokens, (await counter.count(model, sample, 'llama')).tokens, JSON.stringify(sample));
      }
    } finally {
      await counter.dispose();
    }
  });

  it('stops at once when cancelled, and the server\'s slot is idle right after', async () => {
    const controller = new AbortController();
    const long = await collect(backend.reply({ messages: [user('Once upon a time there was a dragon')] }, { maxTokens: 1000 }, controller.signal),
      (text) => { if (text.length > 20) controller.abort(); });
    assert.equal(long.stats.stopReason, 'cancelled');
    assert.ok(long.text.length > 20);
    let slots = await server.slots();
    for (let i = 0; i < 40 && slots.some((s) => s.is_processing); i++) { await new Promise((r) => setTimeout(r, 25)); slots = await server.slots(); }
    assert.deepEqual(slots.map((s) => s.is_processing), [false, false, false, false], 'no slot goes on generating');
  });

  it('sends tool results back in OpenAI\'s format and the model continues', async () => {
    const tools = [{ name: 'getWeather', description: 'Weather of a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];
    const { text, stats } = await collect(backend.reply({ messages: [user('What is the weather in Paris?'),
      { role: 'assistant', content: '', toolCalls: [{ id: 'call-1', name: 'getWeather', params: { city: 'Paris' }, result: 'sunny, 21 C' }] }] }, { tools, maxTokens: 16 }));
    assert.ok(stats.promptTokens > 10 && (text.length > 0 || (stats.toolCalls?.length ?? 0) > 0), JSON.stringify({ text, stats }));
  });

  it('answers 16 concurrent chats, every reply intact and none mixed with another', async () => {
    const prompts = Array.from({ length: 16 }, (_, i) => `Once upon a time, number ${i}, there was a`);
    const alone = [];
    for (const p of prompts.slice(0, 4)) alone.push((await collect(backend.reply({ messages: [user(p)] }, { maxTokens: 24 }))).text);
    const together = await Promise.all(prompts.map((p) => collect(backend.reply({ messages: [user(p)] }, { maxTokens: 24 }))));
    for (const [i, r] of together.entries()) {
      assert.ok(r.text.length > 0 && r.stats.completionTokens > 0 && r.stats.stopReason !== 'error', `reply ${i}: ${JSON.stringify(r)}`);
    }
    // At temperature 0 a reply depends on its own prompt only: the batched replies are the ones each gets alone.
    assert.deepEqual(together.slice(0, 4).map((r) => r.text), alone);
  });

  it('npm run bench -- --server: the same report schema plus latency and throughput at 1, 4 and 16 requests at once', async () => {
    const { stdout } = await run(process.execPath, [...benchCli, '--server', server.url, '--quick', '--json'], { cwd: REPO_ROOT, maxBuffer: 1e7 });
    assert.equal(stdout.trim().split('\n').length, 1, 'nothing but the report on stdout');
    const report = benchReportSchema.parse(JSON.parse(stdout));
    assert.equal(report.backend, 'server');
    assert.equal(report.model.name, 'stories260K-chatml');
    assert.deepEqual(report.concurrency?.map((c) => c.requests), [1, 4, 16]);
    for (const c of report.concurrency!) assert.ok(c.p50 > 0 && c.p50 <= c.p95 && c.p95 <= c.p99 && c.tokensPerSecond > 0, JSON.stringify(c));
    assert.ok(report.firstTokenMs.short.median > 0 && report.generationTokensPerSecond.median > 0 && report.tokenizer.llamaTokensPerSecond > 0);
    const rows = benchRows(report);
    assert.ok(rows.some((r) => r.label === '16 at once, latency p99') && !rows.some((r) => r.section === 'Threads' || r.label === 'Load model'));
  });

  it('npm run bench -- --server: an unreachable or dying server exits non-zero with one line', async () => {
    await assertOneLineFailure(run(process.execPath, [...benchCli, '--server', `http://127.0.0.1:${await freePort()}/v1`, '--quick', '--json'], { cwd: REPO_ROOT }),
      /^nanochat bench: Cannot reach the server at http:\/\/127\.0\.0\.1:\d+\/v1/);
    const doomed = await new LlamaServer(model).start();
    const pending = run(process.execPath, [...benchCli, '--server', doomed.url, '--quick', '--json'], { cwd: REPO_ROOT });
    setTimeout(() => void doomed.kill(), 1500);
    await assertOneLineFailure(pending, /^nanochat bench: .*(server|reach)/i);
  });

  describe('faults: each a clear error, nothing lost, the process lives', () => {
    it('a server that is not running', async () => {
      const down = new ServerBackend({ settings: () => testSettings({ 'server.url': `http://127.0.0.1:${server.port + 1}/v1` }) });
      await assert.rejects(down.reply({ messages: [user('Hello')] }).stats, (err: unknown) =>
        err instanceof ServerError && err.problem === 'unreachable' && /Cannot reach the server at http:\/\/127\.0\.0\.1:\d+\/v1/.test(err.message));
      assert.equal(down.state.kind, 'unreachable');
      assert.deepEqual(await down.listModels(), []);
    });

    it('401 without the API key, and the key goes to that origin only', async () => {
      const locked = await new LlamaServer(model, ['--api-key', 'sekret-key']).start();
      const asked: string[] = [];
      let key: string | undefined;
      const client = new ServerBackend({ settings: () => testSettings({ 'server.url': locked.url }), apiKey: async (origin) => { asked.push(origin); return key; } });
      try {
        await assert.rejects(client.reply({ messages: [user('Hello')] }).stats, (err: unknown) =>
          err instanceof ServerError && err.problem === 'unauthorized' && /Set Server API Key/.test(err.message));
        assert.equal(client.state.kind, 'unauthorized');
        key = 'sekret-key';
        const { text } = await collect(client.reply({ messages: [user('Once upon a time')] }, { maxTokens: 8 }));
        assert.ok(text.length > 0);
        assert.ok(asked.length > 0 && asked.every((o) => o === locked.origin), `asked for keys of ${asked.join(', ')}`);
      } finally {
        await locked.stop();
      }
    });

    it('a 500, a malformed event stream, a first byte slower than the timeout, a model that is gone; a streamed tool call; no /tokenize', async () => {
      const faults = await new FaultServer(server.origin).start();
      let local = testSettings({ 'server.url': faults.url, 'server.timeoutSeconds': 1 });
      const client = new ServerBackend({ settings: () => local });
      try {
        await client.refresh();
        faults.fault = 'status-500';
        await assert.rejects(client.reply({ messages: [user('Hello')] }).stats, (err: unknown) =>
          err instanceof ServerError && err.problem === 'server' && /answered 500: the model crashed/.test(err.message));
        faults.fault = 'malformed-sse';
        const broken = await collect(client.reply({ messages: [user('Hello')] }));
        assert.equal(broken.text, 'Once upon', 'the text that arrived is kept');
        assert.equal(broken.stats.stopReason, 'error');
        assert.match(broken.stats.error!, /cannot read|server/i);
        faults.fault = 'slow-first-byte';
        await assert.rejects(client.reply({ messages: [user('Hello')] }).stats, (err: unknown) =>
          err instanceof ServerError && err.problem === 'timeout' && /did not answer within 1 s/.test(err.message));
        faults.fault = 'tool-call-stream';
        const called = await collect(client.reply({ messages: [user('Weather in Paris?')] }, { tools: [{ name: 'getWeather', parameters: { type: 'object', properties: { city: { type: 'string' } } } }] }));
        assert.deepEqual(called.stats.toolCalls, [{ id: 'call_abc', name: 'getWeather', params: { city: 'Paris' } }], 'a streamed tool call comes back whole');
        faults.fault = 'no-tokenize';
        assert.deepEqual(await client.countTokens('abcdefgh'), { tokens: 2, engine: 'estimate' }, 'a server without /tokenize gets a labelled estimate');
        faults.fault = 'none';
        local = { ...local, 'server.model': 'a-model-that-was-removed' };
        await assert.rejects(client.reply({ messages: [user('Hello')] }).stats, (err: unknown) =>
          err instanceof ServerError && err.problem === 'no-model' && /has no model "a-model-that-was-removed"/.test(err.message));
        faults.fault = 'no-models';
        local = { ...local, 'server.model': '' };
        const emptied = new ServerBackend({ settings: () => local });
        await assert.rejects(emptied.reply({ messages: [user('Hello')] }).stats, (err: unknown) =>
          err instanceof ServerError && err.problem === 'no-model' && /lists no models/.test(err.message));
        faults.fault = 'none';
        const { text } = await collect(client.reply({ messages: [user('Once upon a time')] }, { maxTokens: 8 }));
        assert.ok(text.length > 0, 'the next request works');
      } finally {
        client.dispose();
        await faults.close();
      }
    });

    it('a server killed mid-stream: the text so far is kept and the reply ends with a clear error', async () => {
      const doomed = await new LlamaServer(model).start(await freePort());
      const client = new ServerBackend({ settings: () => testSettings({ 'server.url': doomed.url }) });
      let killed: Promise<void> | undefined;
      const r = await collect(client.reply({ messages: [user('Once upon a time there was a dragon')] }, { maxTokens: 2000 }), (text) => {
        if (text.length > 10 && !killed) killed = doomed.kill();
      });
      await killed;
      assert.ok(r.text.length > 10);
      assert.equal(r.stats.stopReason, 'error');
      assert.ok(r.stats.error && r.stats.error.length > 10, r.stats.error);
      await assert.rejects(client.reply({ messages: [user('Hello')] }).stats, (err: unknown) => err instanceof ServerError && err.problem === 'unreachable');
    });
  });
});

describe('server backend: exact input limits from llama-server\'s own template (a template-true Qwen2.5)', function () {
  this.timeout(20 * 60_000);
  let server: LlamaServer;
  let backend: ServerBackend;
  let settings: Settings;
  before(async () => {
    server = await new LlamaServer(await likeModel('qwen2.5-0.5b-instruct')).start();
    settings = testSettings({ backend: 'server', 'server.url': server.url, maxTokens: 64 });
    backend = new ServerBackend({ settings: () => settings });
  });
  after(async () => { backend?.dispose(); await server?.stop(); });

  it('takes the system prompt and framing out of maxInputTokens (/apply-template): a request filled to it fits to the token', async () => {
    const [m] = await backend.refresh();
    const budget = m.contextSize - 64;
    assert.equal(m.messageOverhead, 5, 'im_start, role, newline … im_end, newline');
    const messages = [user('Summarise this file for me.'), { role: 'assistant' as const, content: 'It defines a parser.' }, user('Which part is slow?')];
    const counted = async () => (await Promise.all(messages.map(async (x) => (await backend.countTokens(x.content)).tokens + m.messageOverhead))).reduce((a, b) => a + b, 0);
    messages[0] = user(`Summarise this file for me.${' a'.repeat(m.maxInputTokens - await counted())}`);
    assert.equal(await counted(), m.maxInputTokens);
    const { stats } = await collect(backend.reply({ messages }, { keepHistory: true, maxTokens: 1 }));
    assert.notEqual(stats.stopReason, 'error', stats.error);
    assert.equal(stats.promptTokens, budget, 'the server evaluated exactly the prompt share of its window');
  });

  it('gives inline completions through llama-server\'s /infill (other files as input_extra), as the embedded engine does', async () => {
    const engine = new CompletionEngine({ settings: () => settings, infill: (r, o, signal) => backend.infill(r, o, signal) });
    try {
      const request = { prefix: 'def add(a, b):\n    ', suffix: '\n\nprint(add(1, 2))\n', path: 'math.py', extra: [{ path: 'util.py', text: 'X = 1\n' }] };
      const result = await engine.complete('math.py', request);
      assert.ok(result && !result.cached && result.model === 'server');
      assert.ok(result.promptTokens > 10 && result.generatedTokens > 0, JSON.stringify(result));
      assert.equal(engine.models.state.kind, 'none', 'no local model was loaded');
      const controller = new AbortController();
      const pending = engine.complete('math.py', { ...request, prefix: 'def mul(a, b):\n    ' }, controller.signal);
      controller.abort();
      assert.equal(await pending, undefined, 'a keystroke cancels the request');
    } finally {
      await engine.dispose();
    }
  });
});
