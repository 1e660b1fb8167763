import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { LlamaContext, LlamaModel, Token } from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import { NODE_LLAMA_CPP_EXPORTS } from '../../src/core/engine/nodeLlamaCppExports';
import { configureLlama, disposeLlamas, getLlamaFor, importNodeLlamaCpp, isMachineBuild, loadModelLean, withLeanGgufParse } from '../../src/core/engine/llama';
import { contextThreadPatch, gitApplyEnv, hasMachineBuild, keepMachineBuild, llamaCppPatches, machineBuildLibraries, nodeLlamaCppRoot, restoreMachineBuild } from '../../src/core/engine/machineBuild';
import { TESTED_PREBUILT_OPTION, forgetTestedPrebuilts } from '../../src/core/engine/testedPrebuilt';
import { GenerationThreads, applyThreadPlan, cpuSampling, cpuSamplingState, decodeAhead, freeCpus, type CpuCounters, type CpuMemory, type ThreadPlan } from '../../src/core/engine/threads';
import { startCpuLoad } from '../../src/core/bench/bench';
import { compareDecodeAhead } from '../../src/core/bench/decodeAheadBench';
import { checkGgufLayout, readGgufInfo } from '../../src/core/modelFiles/ggufReader';
import { silentLogger, type Logger } from '../../src/core/log';
import { llamaCppSource } from '../../tools/llamaCpp.mjs';
import { likeModel } from '../support/likeModels';
import { REPO_ROOT, testModel, vocabDir } from '../support/models';
import { testSettings } from '../support/settings';
import { ModelManager, linePieces, splitsAtLines } from '../../src/core/engine/models';
import { ChatEngine } from '../../src/core/chat/engine';
import { PromptStates } from '../../src/core/engine/promptStates';
import { corpusOfSize } from '../../src/core/bench/corpus';
import vscodeTools from '../../src/core/bench/vscodeTools.json';

/** Counts turns of the event loop (setImmediate) while `work` runs: how often it let the loop run. */
async function loopTurnsDuring(work: () => Promise<unknown>): Promise<number> {
  let turns = 0;
  let running = true;
  const tick = () => { turns++; if (running) setImmediate(tick); };
  setImmediate(tick);
  try { await work(); } finally { running = false; }
  return turns;
}

/** This process's threads (Linux): name and CPU time in ms, from /proc. */
function threadCpu(): Map<string, { name: string; cpuMs: number }> {
  const threads = new Map<string, { name: string; cpuMs: number }>();
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      const name = fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
      const cpuMs = Number(fs.readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
      threads.set(tid, { name, cpuMs });
    } catch { /* the thread ended */ }
  }
  return threads;
}

/**
 * Reads `tokens` into a new context (1,024 cells, one thread) in batches of the given sizes, one after
 * another, and returns the next-token probabilities (the whole vocabulary's) after each batch.
 */
async function probabilitiesAfterBatches(model: LlamaModel, tokens: readonly Token[], batches: readonly number[], flashAttention: boolean): Promise<Array<Map<number, number>>> {
  const context = await model.createContext({ contextSize: 1024, batchSize: 512, threads: 1, flashAttention });
  try {
    const sequence = context.getSequence();
    const out: Array<Map<number, number>> = [];
    let at = 0;
    for (const n of batches) {
      const evaluation = sequence.evaluateWithMetadata(tokens.slice(at, at += n), { probabilities: true }, { temperature: 0 });
      out.push(((await evaluation.next()).value as { probabilities: Map<number, number> }).probabilities);
      await evaluation.return();
    }
    return out;
  } finally {
    await context.dispose();
  }
}

function capture(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const push = (m: string) => { lines.push(m); };
  return { lines, trace: push, debug: push, info: push, warn: push, error: push };
}

describe('speed at real scale', function () {
  this.timeout(300_000);
  let qwen: string;
  before(async () => { qwen = await likeModel('qwen2.5-0.5b-instruct'); });

  it('reads a 152K-token vocabulary without holding the event loop: both GGUF walks let it run', async () => {
    await importNodeLlamaCpp();
    // Our bounds-checked walk, and node-llama-cpp's parser (in 128 KB reads instead of 4 MB ones).
    const layoutTurns = await loopTurnsDuring(() => checkGgufLayout(qwen));
    const parseTurns = await loopTurnsDuring(() => readGgufInfo(qwen));
    // 152K tokens + 151K merges: at least one turn per 4,096 strings, and per 128 KB of header.
    assert.ok(layoutTurns >= 60, `the layout walk let the loop run ${layoutTurns} times`);
    assert.ok(parseTurns >= 20, `the GGUF parse let the loop run ${parseTurns} times`);
    // In small reads, into a buffer that grows by doubling, node-llama-cpp's parse still reads every byte
    // where our own walk does: the header ends at the same offset, and the vocabulary is whole.
    const { layout, info } = await readGgufInfo(qwen);
    assert.equal(info.infoEndOffset, layout.infoEndOffset);
    const tokens = info.metadata.tokenizer?.ggml?.tokens as string[] | undefined;
    assert.equal(tokens?.length, 151_936);
    assert.equal(tokens?.at(-1), '[PAD151935]', 'the last token, read from the end of the grown buffer');
    assert.equal((info.metadata.tokenizer?.ggml as { merges?: string[] } | undefined)?.merges?.length, 151_387);
  });

  it("imports only the node-llama-cpp modules nanochat uses, module by module in Node's own order, letting the event loop run between them (the extension host's Node.js)", async function () {
    // A fresh process each time: an import is once per process. The extension host's Node.js (24) loads
    // and evaluates an import's modules in one synchronous block.
    const root = path.resolve(__dirname, '..', '..');
    const list = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nanochat-import-order-')), 'modules.json');
    execFileSync(process.execPath, [path.join(root, 'tools', 'importOrder.mjs'), root, list], { stdio: 'pipe' });
    const built = JSON.parse(fs.readFileSync(list, 'utf8')) as { nodeLlamaCpp: string; exports: Record<string, string>; modules: string[] };
    const { modules, exports } = built;
    assert.deepEqual(Object.keys(exports), [...NODE_LLAMA_CPP_EXPORTS], 'where each name nanochat uses is defined');
    assert.ok(modules.length > 250 && !modules.includes('node_modules/node-llama-cpp/dist/index.js'), `${modules.length} modules, node-llama-cpp's index not among them`);
    assert.ok(Object.values(exports).every((f) => modules.includes(f)));
    const script = path.join(path.dirname(list), 'child.mts');
    fs.writeFileSync(script, `
      import nodeModule from 'node:module';
      import { pathToFileURL } from 'node:url';
      // Every module evaluated from here on (Node.js 22.15+: synchronous hooks).
      const loaded = new Set();
      // How many of node-llama-cpp's own modules each import of the list loaded (an import cycle loads whole).
      const perImport = new Map();
      let step = () => -1;
      nodeModule.registerHooks?.({ load(url, context, next) {
        loaded.add(url);
        if (url.includes('/node-llama-cpp/dist/')) perImport.set(step(), (perImport.get(step()) ?? 0) + 1);
        return next(url, context);
      } });
      const { configureLlama, importNodeLlamaCpp, importedModulesAhead, importedOnlyWhatIsUsed } = await import(${JSON.stringify(pathToFileURL(path.join(root, 'src', 'core', 'engine', 'llama.ts')).href)});
      const { NODE_LLAMA_CPP_EXPORTS } = await import(${JSON.stringify(pathToFileURL(path.join(root, 'src', 'core', 'engine', 'nodeLlamaCppExports.ts')).href)});
      configureLlama({ importOrder: process.argv[2] || undefined });
      step = importedModulesAhead;
      // The loop's turns that saw the import part way: each new count of modules imported so far.
      const seen = new Set();
      let running = true;
      const tick = () => { seen.add(importedModulesAhead()); if (running) setImmediate(tick); };
      setImmediate(tick);
      const lib = await importNodeLlamaCpp();
      running = false;
      const evaluated = [...loaded].filter((u) => u.includes('/node_modules/') && !u.includes('/tsx/') && !u.includes('/esbuild/') && !u.includes('/get-tsconfig/'));
      const index = evaluated.some((u) => u.endsWith('/node-llama-cpp/dist/index.js'));
      const named = await import(${JSON.stringify(pathToFileURL(path.join(root, 'node_modules', 'node-llama-cpp', 'dist', 'index.js')).href)});
      const parser = await import(${JSON.stringify(pathToFileURL(path.join(root, 'node_modules', 'node-llama-cpp', 'dist', 'gguf', 'parser', 'GgufV2Parser.js')).href)});
      console.log(JSON.stringify({
        turns: seen.size, ahead: importedModulesAhead(), lean: importedOnlyWhatIsUsed(),
        hooks: typeof nodeModule.registerHooks === 'function', evaluated: evaluated.length, index, largestStep: Math.max(0, ...perImport.values()),
        names: Object.keys(lib).length, same: NODE_LLAMA_CPP_EXPORTS.every((n) => lib[n] !== undefined && lib[n] === named[n]),
        patched: typeof parser.GgufV2Parser.prototype._readGgufValue === 'function' && parser.GgufV2Parser.prototype.__nanochatArrays !== undefined,
      }));
    `);
    const hostNode = path.join(process.env.VSCODE_HOST_DIR || path.join(os.homedir(), '.cache', 'nanochat', 'vscode-host-4.139.1'), 'node24', 'bin', 'node');
    const node = fs.existsSync(hostNode) ? hostNode : process.execPath;
    type Run = { turns: number; ahead: number; lean: boolean; hooks: boolean; evaluated: number; index: boolean; largestStep: number; names: number; same: boolean; patched: boolean };
    const run = (order: string) => JSON.parse(execFileSync(node, ['--import', 'tsx', script, order], { cwd: root, encoding: 'utf8', env: { ...process.env, NODE_DISABLE_COMPILE_CACHE: '1' } }).trim().split('\n').at(-1)!) as Run;
    const sliced = run(list);
    const whole = run('');
    console.log(`      node ${execFileSync(node, ['--version'], { encoding: 'utf8' }).trim()}: ${sliced.ahead} modules imported one at a time (${sliced.evaluated} evaluated in all, against ${whole.evaluated} for node-llama-cpp's index); the event loop ran at ${sliced.turns} points of the import; one import loaded at most ${sliced.largestStep} of node-llama-cpp's modules`);
    assert.equal(sliced.ahead, modules.length, 'every module of the list imported (the paths are this layout)');
    assert.ok(sliced.lean && sliced.names === NODE_LLAMA_CPP_EXPORTS.length && sliced.same, 'exactly the names nanochat uses, each the value node-llama-cpp exports');
    assert.ok(sliced.patched && whole.patched, "nanochat's GGUF reader changes are in node-llama-cpp's own copy");
    assert.ok(sliced.turns >= 6, `the loop ran between modules: at ${sliced.turns} points of the import`);
    if (sliced.hooks) {
      assert.ok(!sliced.index && whole.index, "node-llama-cpp's index is evaluated only by the plain import");
      // Everything an import cycle imports comes before it: no import loads more than the largest cycle
      // (11 modules in 3.21.1; in Node.js's plain post-order, getLlamaWithoutBackend.js loaded 144).
      assert.ok(sliced.largestStep > 0 && sliced.largestStep <= 20, `one import loaded ${sliced.largestStep} of node-llama-cpp's modules`);
      assert.ok(sliced.evaluated < whole.evaluated - 50, `${sliced.evaluated} modules evaluated against ${whole.evaluated}`);
    }
    assert.ok(!whole.lean && whole.ahead === 0 && whole.same);
    // A list for another version is not used; nor one whose module does not define a name (the index is imported instead).
    fs.writeFileSync(list, JSON.stringify({ ...built, nodeLlamaCpp: '0.0.0' }));
    const other = run(list);
    assert.ok(other.ahead === 0 && !other.lean && other.same);
    fs.writeFileSync(list, JSON.stringify({ ...built, exports: { ...exports, getLlama: exports.LlamaLogLevel } }));
    const wrong = run(list);
    assert.ok(wrong.ahead === modules.length && !wrong.lean && wrong.same && (!wrong.hooks || wrong.index), JSON.stringify(wrong));
  });

  it("reads GGUF arrays from its buffer exactly as node-llama-cpp's own value reader does (12 vocabularies)", async function () {
    const lib = await importNodeLlamaCpp();
    const file = path.join(nodeLlamaCppRoot(), 'dist', 'gguf', 'parser', 'GgufV2Parser.js');
    const proto = ((await import(pathToFileURL(file).href)) as { GgufV2Parser: { prototype: Record<string, unknown> } }).GgufV2Parser.prototype;
    const patched = proto._readGgufValue;
    const original = proto.__nanochatArrays;
    assert.equal(typeof original, 'function', 'the array reader is in place, and keeps the one it replaced');
    const dir = vocabDir();
    const files = [qwen, ...(dir ? fs.readdirSync(dir).filter((f) => f.endsWith('.gguf')).map((f) => path.join(dir, f)) : [])];
    assert.ok(files.length >= 12, `vocabularies to compare: ${files.length}`);
    const parse = (f: string) => lib.readGgufFileInfo(f, { sourceType: 'filesystem', logWarnings: false });
    for (const f of files) {
      const ours = await parse(f);
      proto._readGgufValue = original;
      let theirs;
      try { theirs = await parse(f); } finally { proto._readGgufValue = patched; }
      // Every value, of every type: strings, float32 scores, int32 token types, and any other array.
      assert.deepStrictEqual(ours.metadata, theirs.metadata, path.basename(f));
      assert.equal(ours.infoEndOffset, theirs.infoEndOffset, path.basename(f));
    }
  });

  it('loads a model without making its vocabulary\'s strings, while a parse beside it reads them all (12 vocabularies)', async function () {
    const lib = await importNodeLlamaCpp();
    const dir = vocabDir();
    const files = [qwen, ...(dir ? fs.readdirSync(dir).filter((f) => f.endsWith('.gguf')).map((f) => path.join(dir, f)) : [])];
    assert.ok(files.length >= 12, `vocabularies: ${files.length}`);
    const parse = (f: string) => lib.readGgufFileInfo(f, { sourceType: 'filesystem', logWarnings: false });
    const big = (ggml: Record<string, unknown>) => Object.keys(ggml).filter((k) => Array.isArray(ggml[k]) && (ggml[k] as unknown[]).length >= 4096);
    let skipped = 0;
    for (const f of files) {
      // Started together: the lean parse's scope must not reach the other one.
      const [lean, full] = await Promise.all([withLeanGgufParse(() => parse(f)), parse(f)]);
      const leanGgml = (lean.metadata.tokenizer?.ggml ?? {}) as Record<string, unknown>;
      const fullGgml = (full.metadata.tokenizer?.ggml ?? {}) as Record<string, unknown>;
      const arrays = big(fullGgml);
      assert.ok(arrays.includes('tokens'), `${path.basename(f)}: a vocabulary of ≥ 4096 tokens`);
      for (const key of arrays) {
        const kept = fullGgml[key] as unknown[];
        const passed = leanGgml[key] as unknown[];
        assert.ok(kept.every((v) => v !== undefined), `${path.basename(f)} ${key}: every element read beside the lean parse`);
        assert.equal(passed.length, kept.length, `${path.basename(f)} ${key}: the length is kept`);
        assert.equal(passed.filter((v) => v !== undefined).length, 0, `${path.basename(f)} ${key}: no element was made`);
        skipped += kept.length;
      }
      // Everything else is the same value, and the reader ended at the same offset.
      const rest = (info: typeof lean) => JSON.stringify(info.metadata, (k, v) => (arrays.includes(k) ? undefined : typeof v === 'bigint' ? `${v}n` : v));
      assert.equal(rest(lean), rest(full), path.basename(f));
      assert.equal(lean.infoEndOffset, full.infoEndOffset, path.basename(f));
    }
    console.log(`      ${skipped.toLocaleString('en')} vocabulary elements passed over in ${files.length} files`);
    // Lean parses that overlap: the first to end (a 512-token vocabulary) leaves the other lean (the
    // store is disabled, its promise hook off, only once the last has ended), and a parse after both
    // reads every element.
    const small = await testModel('stories260K.gguf');
    let smallDone = false;
    const [, overlapped] = await Promise.all([
      withLeanGgufParse(() => parse(small)).then(() => { smallDone = true; }),
      withLeanGgufParse(async () => { await new Promise((resolve) => setTimeout(resolve, 20)); const info = await parse(qwen); return { info, afterSmall: smallDone }; }),
    ]);
    assert.ok(overlapped.afterSmall, 'the other lean parse ended first');
    assert.equal((overlapped.info.metadata.tokenizer?.ggml?.tokens as unknown[]).filter((v) => v !== undefined).length, 0, 'still lean after the other ended');
    assert.ok((await parse(qwen)).metadata.tokenizer?.ggml?.tokens?.every((v) => v !== undefined), 'a parse after them reads every element');
    // And a model loads that way: its native tokenizer has the whole vocabulary.
    const llama = await getLlamaFor('off', silentLogger);
    const model = await loadModelLean(llama, { modelPath: qwen, vocabOnly: true });
    try {
      assert.equal(model.fileInfo.metadata.tokenizer?.ggml?.tokens?.length, 151_936);
      assert.equal(model.detokenize(model.tokenize('Hello, world! 你好')), 'Hello, world! 你好');
    } finally {
      await model.dispose();
    }
  });

  it('tokenizes text in pieces that end at line breaks exactly as whole, for the BPE vocabularies nanochat splits (4)', async function () {
    const llama = await getLlamaFor('off', silentLogger);
    const dir = vocabDir();
    const files = [qwen, ...(dir ? fs.readdirSync(dir).filter((f) => f.endsWith('.gguf')).map((f) => path.join(dir, f)) : [])];
    const inputs = dir ? fs.readdirSync(dir).filter((f) => f.endsWith('.inp')).map((f) => fs.readFileSync(path.join(dir, f), 'utf8')) : [];
    const texts = [JSON.stringify(vscodeTools, null, 2), (vscodeTools as object[]).map((t) => JSON.stringify(t)).join('\n'), corpusOfSize(20_000), inputs.join('\n'), `x\n\n\ty\r\nz\n \n${'-'.repeat(300)}\n\u00a0a\n1\n'\n"s\n`.repeat(20)];
    let bpe = 0;
    for (const f of files) {
      const model = await llama.loadModel({ modelPath: f, vocabOnly: true });
      try {
        if (!splitsAtLines(model)) continue;
        bpe++;
        // And as a rendered prompt is, with the vocabulary's special tokens (tokenized as such) at line starts.
        const specials = [model.tokens.bosString, model.tokens.eosString, model.tokens.eotString].filter((t): t is string => Boolean(t));
        assert.ok(specials.length > 0, 'special tokens to place');
        const prompt = texts[1]!.split('\n').map((line, i) => `${specials[i % specials.length]}${line}`).join('\n');
        for (const [text, special] of [...texts.map((t) => [t, false] as const), ...texts.map((t) => [t, true] as const), [prompt, true] as const]) {
          const pieces = linePieces(text, 64);
          assert.ok(pieces.length > 3 && pieces.join('') === text, 'pieces cover the text');
          for (const options of [undefined, 'trimLeadingSpace'] as const) {
            const whole = model.tokenize(text, special, options);
            const inPieces = pieces.flatMap((p, i) => model.tokenize(p, special, i === 0 ? options : undefined));
            assert.deepStrictEqual(inPieces, whole, `${path.basename(f)}, special tokens ${special}, ${options ?? 'no options'}: ${text.slice(0, 40)}…`);
          }
          if (text === prompt) assert.ok(model.tokenize(text, true).length < model.tokenize(text, false).length, 'the special tokens were read as such');
        }
      } finally {
        await model.dispose();
      }
    }
    // Qwen2.5's, and llama.cpp's Llama 3, DeepSeek LLM and DeepSeek Coder vocabularies.
    assert.ok(bpe >= 4, `BPE vocabularies compared: ${bpe}`);
  });

  it("lets the event loop run while an agent-sized prompt (VS Code's 27 tools, 9K tokens) is tokenized", async () => {
    const settings = testSettings({ model: qwen, contextSize: 16384, maxTokens: 1, temperature: 0 });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanochat-loop-'));
    const models = new ModelManager({ settings: () => settings, sequences: 1, log: silentLogger });
    const chat = new ChatEngine(models, () => settings, silentLogger, new PromptStates({ dir, log: silentLogger }));
    try {
      const loaded = await models.load();
      // node-llama-cpp's own vocabulary strings are not kept with the model: only the lengths it reads.
      const ggml = (loaded.model.fileInfo.metadata as unknown as { tokenizer?: { ggml?: Record<string, unknown[]> } }).tokenizer?.ggml;
      assert.equal(ggml?.tokens?.length, 151_936);
      assert.equal(ggml?.merges?.length, 151_387);
      assert.ok(ggml?.tokens?.every((t) => t === undefined) && ggml.merges?.every((t) => t === undefined), 'no token strings kept');
      // Each native tokenization notes its length and the loop turn it ran in.
      let turns = 0;
      let running = true;
      const tick = () => { turns++; if (running) setImmediate(tick); };
      const addon = (loaded.model as unknown as { _model: { tokenize(text: string, special: boolean): Uint32Array } })._model;
      const native = addon.tokenize.bind(addon);
      const inTurn = new Map<number, number>();
      let longest = 0;
      Object.defineProperty(addon, 'tokenize', { configurable: true, value: (text: string, special: boolean) => {
        inTurn.set(turns, (inTurn.get(turns) ?? 0) + text.length);
        longest = Math.max(longest, text.length);
        return native(text, special);
      } });
      const tools = (vscodeTools as Array<{ name: string; description?: string; inputSchema?: object }>).map((t) => ({ name: t.name, description: t.description ?? '', parameters: t.inputSchema }));
      setImmediate(tick);
      const r = chat.reply({ messages: [{ role: 'user', content: 'List the files.' }] }, { tools, maxTokens: 1 });
      for await (const _ of r) { /* the reply itself is not the point */ }
      running = false;
      const stats = await r.stats;
      assert.ok(stats.promptTokens > 8000, `an agent-sized prompt: ${stats.promptTokens} tokens`);
      // The prompt (~40K characters, rendered twice: to fit the window, and to find the preamble) is
      // tokenized in pieces of ~4K characters, each in a loop turn of its own.
      const total = [...inTurn.values()].reduce((a, b) => a + b, 0);
      assert.ok(total > 60_000, `characters tokenized: ${total}`);
      assert.ok(longest < 10_000, `the longest text tokenized at once: ${longest} characters`);
      const most = Math.max(...inTurn.values());
      assert.ok(most < 12_000, `the most characters tokenized in one loop turn: ${most}`);
    } finally {
      chat.dispose();
      await models.dispose();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads prompts on the prompt thread count (fewer when other programs keep the CPUs busy) and generates on the generation count', async () => {
    const llama = await getLlamaFor('off', silentLogger);
    const model = await llama.loadModel({ modelPath: qwen });
    /** The thread count llama.cpp actually has for each batch of a short chat, under a given plan and idle-CPU count. */
    const batches = async (plan: ThreadPlan, free: number) => {
      const context = await model.createContext({ contextSize: 512, threads: 2, sequences: 1 });
      try {
        const threads = applyThreadPlan(context, plan, () => free);
        assert.ok(threads, 'node-llama-cpp\'s context internals are the expected ones');
        // Spy outside the plan: the count llama.cpp actually has when each batch is decoded.
        const addon = (context as unknown as { _ctx: { decodeBatch(): Promise<void>; getThreads(): number; initBatch(n: number): void } })._ctx;
        const decode = addon.decodeBatch.bind(addon);
        const init = addon.initBatch.bind(addon);
        const seen: Array<{ tokens: number; threads: number }> = [];
        let tokens = 0;
        Object.defineProperty(addon, 'initBatch', { configurable: true, value: (n: number) => { tokens = n; init(n); } });
        Object.defineProperty(addon, 'decodeBatch', { configurable: true, value: async () => { seen.push({ tokens, threads: addon.getThreads() }); await decode(); } });
        const sequence = context.getSequence();
        const prompt = model.tokenize('The quick brown fox jumps over the lazy dog. '.repeat(6), false);
        let generated = 0;
        for await (const _ of sequence.evaluate(prompt, { temperature: 0 })) if (++generated >= 6) break;
        const prompts = seen.filter((s) => s.tokens >= 8);
        const generation = seen.filter((s) => s.tokens === 1);
        assert.ok(prompts.length >= 1 && generation.length >= 5, JSON.stringify(seen));
        // The plan says what the last prompt batch was read on (the bench's multi-turn names it per turn).
        assert.deepEqual(threads.lastPrompt, prompts.at(-1));
        return { prompt: [...new Set(prompts.map((s) => s.threads))], generation: [...new Set(generation.map((s) => s.threads))] };
      } finally {
        await context.dispose();
      }
    };
    try {
      assert.deepEqual(await batches({ prompt: 2, generation: 1 }, 2), { prompt: [2], generation: [1] }, 'prompts on every core, generation on its own count');
      assert.deepEqual(await batches({ prompt: 2, generation: 1 }, 0), { prompt: [1], generation: [1] }, 'every CPU busy elsewhere: prompts on one thread');
      assert.deepEqual(await batches({ prompt: 2, generation: 1, promptFixed: true }, 0), { prompt: [2], generation: [1] }, 'nanochat.promptThreads is kept, busy or not');
    } finally {
      await model.dispose();
    }
  });

  it('sees the CPUs other programs keep busy (Linux: /proc/loadavg), not its own threads, so more threads are not tried then', async function () {
    if (process.platform !== 'linux') this.skip();
    const cpus = os.availableParallelism();
    const idle = freeCpus();
    assert.ok(idle !== undefined && idle >= 0 && idle <= cpus, `free ${idle} of ${cpus}`);
    // This process's own busy thread (as llama.cpp's workers polling after a batch) is not load.
    const own = new Worker('const end = Date.now() + 3000; while (Date.now() < end) {}', { eval: true });
    try {
      await new Promise((r) => setTimeout(r, 100));
      const seen: number[] = [];
      for (let i = 0; i < 5; i++) { seen.push(freeCpus()!); await new Promise((r) => setTimeout(r, 20)); }
      assert.ok(Math.max(...seen) === cpus, `with only this process busy, free CPUs seen: ${seen.join(', ')} of ${cpus}`);
    } finally {
      await own.terminate();
    }
    const load = await startCpuLoad(cpus);
    try {
      // Sampled a few times: a busy process can be between time slices at one instant. The first
      // samples wait for a window of /proc/stat that the load fills.
      await new Promise((r) => setTimeout(r, 600));
      const seen: number[] = [];
      for (let i = 0; i < 5; i++) { seen.push(freeCpus()!); await new Promise((r) => setTimeout(r, 150)); }
      assert.ok(Math.min(...seen) === 0, `with ${cpus} busy processes, free CPUs seen: ${seen.join(', ')}`);
    } finally {
      load.stop();
    }
  });

  it("does not take another program's moment of running for load: only programs that used half a CPU over the last window count", () => {
    const cpus = os.availableParallelism();
    const c = { t: 0, busy: 1000, total: 4000, own: 100, runnable: 1, ownRunning: 1 };
    const counters: CpuCounters = {
      loadavg: () => `0.50 0.40 0.30 ${c.runnable}/300 4321\n`,
      stat: () => `cpu  ${c.busy} 0 0 ${c.total - c.busy} 0 0 0 0 0 0`,
      selfStat: () => `4321 (node (x) y) S 1 1 1 0 -1 0 0 0 0 0 ${c.own} 0 20 0`,
      ownRunning: () => c.ownRunning,
      now: () => c.t,
    };
    const memory: CpuMemory = {};
    // Ticks over `ms` (100 per second per CPU): `ownCpus` of them this process's, `otherCpus` another's.
    const advance = (ms: number, ownCpus: number, otherCpus: number) => {
      c.t += ms;
      const ticks = ms / 10;
      c.total += ticks * cpus;
      c.own += ticks * ownCpus;
      c.busy += ticks * (ownCpus + otherCpus);
    };
    // No window yet: the instant is all there is (one other runnable thread).
    c.runnable = 2;
    assert.equal(freeCpus(counters, memory), cpus - 1);
    // This process decoded on one CPU for half a second; at this instant a kernel worker runs too.
    advance(500, 1, 0.01);
    assert.equal(freeCpus(counters, memory), cpus, 'a thread that ran for a moment is not a busy core');
    // 50 ms later (too soon for a window of its own): the last window still answers.
    advance(50, 1, 0);
    assert.equal(freeCpus(counters, memory), cpus);
    // Another program keeps every CPU busy: the instant and the window both show it.
    c.runnable = 1 + cpus;
    advance(500, 0, cpus);
    assert.equal(freeCpus(counters, memory), 0);
    // One busy program beside this process's own work.
    c.runnable = 3;
    c.ownRunning = 2;
    advance(500, 1, 1);
    assert.equal(freeCpus(counters, memory), cpus - 1);
    // Every CPU wanted by busy programs while this process took one: they used less than they want,
    // and the instant count, not their use, says how many CPUs they keep busy.
    c.runnable = 1 + cpus;
    c.ownRunning = 1;
    advance(500, 1, cpus - 1);
    assert.equal(freeCpus(counters, memory), 0);
    // A reading 5 s old says little of now: the instant alone again.
    c.runnable = 2;
    c.ownRunning = 1;
    advance(5000, 0, 0);
    assert.equal(freeCpus(counters, memory), cpus - 1);
    // Unreadable counters: the instant alone; no loadavg: unknown.
    advance(500, 0, 0);
    assert.equal(freeCpus({ ...counters, stat: () => 'cpu garbage' }, memory), cpus - 1);
    assert.equal(freeCpus({ ...counters, loadavg: () => '' }, memory), undefined);
  });

  it('keeps a window of the CPU counters at hand while a context with a thread plan is alive, however long since the last prompt (Linux)', async function () {
    if (process.platform !== 'linux') this.skip();
    const saved = { ...cpuSampling };
    // "The last minute" made short: only the context's hold keeps the readings going past it.
    Object.assign(cpuSampling, { recentMs: 50, keepMs: 100, heldMs: 150 });
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    const llama = await getLlamaFor('off', silentLogger);
    const model = await llama.loadModel({ modelPath: qwen });
    try {
      await sleep(400); // whatever earlier tests started has stopped
      const before = cpuSamplingState();
      assert.equal(before.running, false, JSON.stringify(before));
      const context = await model.createContext({ contextSize: 256, threads: 2, sequences: 1 });
      assert.ok(applyThreadPlan(context, { prompt: 2, generation: 1 }));
      assert.equal(cpuSamplingState().holders, before.holders + 1);
      await sleep(1000); // ten times "the last minute", with no prompt
      const held = cpuSamplingState();
      assert.ok(held.running && held.lastReadingAgeMs !== undefined && held.lastReadingAgeMs <= 150 + 100, `still read while held: ${JSON.stringify(held)}`);
      // The window is the one a prompt finds: another program's moment of running is not load.
      assert.ok(freeCpus() !== undefined);
      await context.dispose();
      assert.equal(cpuSamplingState().holders, before.holders);
      await sleep(400);
      assert.equal(cpuSamplingState().running, false, 'no reading once no context holds it and none was asked for');
    } finally {
      Object.assign(cpuSampling, saved);
      await model.dispose();
    }
  });

  it('remembers the backend gpu: auto found, and loads it directly next time', async () => {
    const store = new Map<string, unknown>();
    const memory = { get: <T>(key: string) => store.get(key) as T | undefined, update: async (key: string, value: unknown) => { store.set(key, value); } };
    try {
      configureLlama({ memory });
      await disposeLlamas();
      const first = capture();
      await getLlamaFor('auto', first);
      const remembered = [...store.values()][0] as { backend: string; version: string } | undefined;
      assert.equal(remembered?.backend, 'cpu');
      assert.match(remembered?.version ?? '', /^\d+\.\d+\.\d+/);
      await disposeLlamas();
      const second = capture();
      await getLlamaFor('auto', second);
      assert.ok(second.lines.some((l) => /backend cpu, remembered/.test(l)), second.lines.join('\n'));
      // A remembered backend this machine cannot load is detected again, not trusted.
      store.set([...store.keys()][0]!, { backend: 'cuda', version: remembered!.version });
      await disposeLlamas();
      const third = capture();
      const llama = await getLlamaFor('auto', third);
      assert.equal(llama.gpu, false);
      assert.ok(third.lines.some((l) => /remembered backend "cuda" did not load/.test(l)), third.lines.join('\n'));
      assert.equal((store.get([...store.keys()][0]!) as { backend: string }).backend, 'cpu');
    } finally {
      configureLlama({});
      await disposeLlamas();
    }
  });

  it('the thread-pool, barrier, load, flash-attention and x86 decoding patches apply to the llama.cpp node-llama-cpp ships', () => {
    const source = llamaCppSource();
    const patches = llamaCppPatches();
    assert.deepEqual(patches.map((p) => path.basename(p)), ['persistent-threadpool.diff', 'barrier-yield.diff', 'faster-load.diff', 'gqa-flash-attention.diff', 'x86-decode.diff']);
    for (const patch of patches) execFileSync('git', ['apply', '--check', patch], { cwd: source, stdio: 'pipe' });
  });

  it('loads weights repacked on several threads into the bytes one thread makes, large buffers on huge pages, the file\'s copied pages dropped (machine build, Linux)', function () {
    if (!hasMachineBuild() || process.platform !== 'linux') this.skip();
    // Each load in a process of its own: the repack's thread count is read once per process.
    const load = (threads: number) => JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'test', 'support', 'loadedWeights.ts'), qwen], {
      cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, NANOCHAT_REPACK_THREADS: String(threads) },
    }).trim().split('\n').at(-1)!) as { machineBuild: boolean; tokens: number[]; anonHugeKb: number; fileRssKb: number };
    // The model's feed-forward weights (4,864 × 896, 2.4 MB each) are split among the threads; a part
    // written to or read from the wrong rows changes the generated tokens.
    const one = load(1);
    const several = load(2);
    assert.ok(one.machineBuild && several.machineBuild);
    assert.equal(one.tokens.length, 24);
    assert.deepEqual(several.tokens, one.tokens);
    // Every weight of this model is copied out of the file (repacked), the embeddings too (tied to the
    // output weights): the file's pages are not kept in the process as well (81 MB of 87 were before).
    const fileKb = fs.statSync(qwen).size / 1024;
    assert.ok(several.fileRssKb < fileKb / 4, `the model file's resident pages after the load: ${several.fileRssKb} kB of ${Math.round(fileKb)}`);
    const thp = fs.readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8');
    if (/\[never\]/.test(thp)) return;
    // The output weights (the embeddings, tied: 151,936 × 896, 77 MB) are repacked into a buffer asked for on huge pages.
    assert.ok(several.anonHugeKb >= 32 * 1024, `huge pages in use (${thp.trim()}): ${several.anonHugeKb} kB`);
  });

  it('flash attention over prompt batches of every shape gives the distribution attention without it gives (machine build)', async function () {
    if (!hasMachineBuild()) this.skip();
    // Two layers: the second layer's keys and values come from the first layer's output at every
    // position, so a wrong row anywhere in a batch (its mask, its head, its position) reaches the last
    // token's distribution, not only a wrong last row.
    const twoLayers = await likeModel('qwen2.5-0.5b-instruct', 2);
    const llama = await getLlamaFor('off', silentLogger);
    assert.ok(isMachineBuild(llama));
    const model = await llama.loadModel({ modelPath: twoLayers });
    const text = 'The quick brown fox jumps over the lazy dog while the cat watches from a distance, thinking about dinner. '.repeat(40);
    const tokens = model.tokenize(text, false);
    // Batches appended one after another: a long first prompt (several tiles of queries and keys), a
    // follow-up of under 64 tokens (the row-by-row path before the patch), a handful, exactly 64, a
    // single token (generation's), then more at depth.
    const batches = [300, 56, 5, 64, 1, 100, 20];
    try {
      assert.ok(tokens.length >= batches.reduce((a, b) => a + b, 0));
      const flash = await probabilitiesAfterBatches(model, tokens, batches, true);
      const plain = await probabilitiesAfterBatches(model, tokens, batches, false);
      batches.forEach((n, i) => {
        // Total variation distance between the next-token distributions over all 151,936 tokens. The
        // two paths round differently (0.0031–0.0038 measured); with a batch's rows given the
        // neighbouring KV head's values it was 0.32–0.33, with the causal mask left out 0.0093–0.0147.
        let tv = 0;
        for (const [token, p] of flash[i]!) tv += Math.abs(p - (plain[i]!.get(token) ?? 0));
        assert.equal(flash[i]!.size, 151_936);
        assert.ok(tv / 2 < 0.008, `batch ${i + 1} (${n} tokens): total variation ${(tv / 2).toFixed(4)} between flash attention and without`);
      });
    } finally {
      await model.dispose();
    }
  });

  it('flash attention gives a token the same result whichever batch reads it: a prompt read at once or in pieces gives bit-identical probabilities (machine build)', async function () {
    if (!hasMachineBuild()) this.skip();
    const llama = await getLlamaFor('off', silentLogger);
    assert.ok(isMachineBuild(llama));
    const model = await llama.loadModel({ modelPath: await likeModel('qwen2.5-0.5b-instruct', 2) });
    try {
      const tokens = model.tokenize('The quick brown fox jumps over the lazy dog while the cat watches from a distance. '.repeat(20), false).slice(0, 300);
      assert.equal(tokens.length, 300);
      const read = async (pieces: number[]) => (await probabilitiesAfterBatches(model, tokens, pieces, true)).at(-1)!;
      // A follow-up whose prompt is partly cached reads the rest in a smaller batch; a reply's tokens are
      // read one at a time. llama.cpp's own kernels differ by batch size (64 rows and more, fewer, one):
      // 7e-7 and 3e-6 apart here, enough to change a reply at temperature 0 on a small model.
      const whole = await read([300]);
      for (const pieces of [[200, 7, 1, 92], [150, 149, 1]]) {
        const split = await read(pieces);
        let differ = 0;
        for (const [token, p] of whole) if (split.get(token) !== p) differ++;
        assert.equal(differ, 0, `read in pieces of ${pieces.join(', ')}: ${differ} of ${whole.size} probabilities differ`);
      }
    } finally {
      await model.dispose();
    }
  });

  it("the machine build's flash attention agrees with ggml's reference kernel on test-backend-ops' cases (Linux)", function () {
    const libraries = machineBuildLibraries();
    if (!libraries || process.platform !== 'linux') this.skip();
    // llama.cpp's own operator test, from the same release (nanochat's patches change no header),
    // linked against the machine build's ggml: each case runs the build's kernel and ggml's reference
    // (the CPU backend's use_ref) and compares them within the test's own tolerance.
    const source = llamaCppSource();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanochat-test-backend-ops-'));
    try {
      const exe = compileAgainstGgml(path.join(source, 'tests', 'test-backend-ops.cpp'), libraries, dir);
      // Prompt batches of 3, 32 and 75 rows with f16 keys and values (what a context holds), head
      // sizes 64 and 128: grouped-query heads, masks, sinks, soft-capping, ALiBi and permuted layouts.
      const run = spawnSync(exe, ['test', '-o', 'FLASH_ATTN_EXT', '-b', 'CPU', '-p', 'hsk=(64|128),.*nb=(3|32|35|75),.*type_K=f16'], { encoding: 'utf8', maxBuffer: 64 << 20 });
      const failures = run.stdout.split('\n').filter((line) => /FAIL/.test(line)).slice(0, 5).join('\n');
      const passed = /(\d+)\/(\d+) tests passed/.exec(run.stdout);
      assert.equal(run.status, 0, `test-backend-ops failed:\n${failures}\n${run.stderr.slice(-2000)}`);
      assert.ok(passed && passed[1] === passed[2] && Number(passed[2]) >= 300, `test-backend-ops: ${passed?.[0] ?? 'no summary'}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the machine build's quantized matrix products agree with a double-precision reference, plain and repacked, one token and batches (Linux)", function () {
    const libraries = machineBuildLibraries();
    if (!libraries || process.platform !== 'linux') this.skip();
    agreesWithReference(libraries);
  });

  it('ggml built from the patched source for AVX2, with AVX-VNNI and without, agrees with the same reference (Linux, x86 with AVX2)', function () {
    this.timeout(900_000);
    const flags = process.platform === 'linux' ? /^flags\s*:(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim().split(/\s+/) ?? [] : [];
    if (process.arch !== 'x64' || !['avx2', 'fma', 'f16c'].every((f) => flags.includes(f)) || spawnSync('cmake', ['--version']).status !== 0) this.skip();
    // x86-decode.diff's q4_0 kernel has a 256-bit form that an AVX-512 machine build never runs: ggml is
    // built for those instruction sets (kept by the patches' hash) and runs the same cases, on this CPU.
    const variants = [{ name: 'avx2-avxvnni', vnni: true }, { name: 'avx2', vnni: false }].filter((v) => !v.vnni || flags.includes('avx_vnni'));
    for (const variant of variants) agreesWithReference(ggmlBuiltFor(variant.name, variant.vnni));
  });

  it("the decoding-thread patch applies to node-llama-cpp's addon (or the machine build applied it), even inside a git work tree", () => {
    const llamaDir = path.join(nodeLlamaCppRoot(), 'llama');
    // node_modules here sits inside this repository's work tree: without gitApplyEnv, git skips every file.
    const check = (reverse: boolean) => {
      const r = spawnSync('git', ['apply', ...(reverse ? ['--reverse'] : []), '--check', '--verbose', contextThreadPatch()], { cwd: llamaDir, encoding: 'utf8', env: gitApplyEnv(llamaDir) });
      assert.doesNotMatch(`${r.stdout}${r.stderr}`, /Skipped patch/);
      return r.status === 0;
    };
    // (A machine build restored from the cache leaves the source as installed: either state is right.)
    assert.ok(check(false) || check(true), 'addon-context-thread.diff matches node-llama-cpp\'s addon source');
  });

  it("decodes and samples on the context's own thread, not on whichever libuv thread is free (Linux)", async function () {
    if (!hasMachineBuild() || process.platform !== 'linux') this.skip();
    const llama = await getLlamaFor('off', silentLogger);
    assert.ok(isMachineBuild(llama));
    const model = await llama.loadModel({ modelPath: qwen });
    const named = () => [...threadCpu().entries()].filter(([, t]) => t.name === 'nanochat-decode').map(([tid]) => tid);
    const others = named();
    let context: LlamaContext | undefined;
    try {
      context = await model.createContext({ contextSize: 256, threads: 1, sequences: 1 });
      const sequence = context.getSequence();
      // The first token starts the context's thread; the CPU of the rest is counted.
      const tokens = sequence.evaluate(model.tokenize('Once upon a time', false), { temperature: 0 });
      await tokens.next();
      const before = threadCpu();
      let generated = 0;
      for await (const _ of tokens) if (++generated >= 24) break;
      const after = threadCpu();
      const mine = named().filter((tid) => !others.includes(tid));
      assert.equal(mine.length, 1, 'one decoding thread for the context');
      const used = (tid: string) => (after.get(tid)?.cpuMs ?? 0) - (before.get(tid)?.cpuMs ?? 0);
      const decodeMs = used(mine[0]!);
      // Every other thread but the JavaScript one (libuv's pool, V8's helpers) did next to nothing.
      const elsewhereMs = [...after.keys()].filter((tid) => tid !== mine[0] && tid !== String(process.pid)).reduce((sum, tid) => sum + Math.max(0, used(tid)), 0);
      assert.ok(decodeMs > 24 * 2, `the decoding thread used ${decodeMs.toFixed(1)} ms for 24 tokens`);
      assert.ok(elsewhereMs < decodeMs / 5, `other threads used ${elsewhereMs.toFixed(1)} ms beside the decoding thread's ${decodeMs.toFixed(1)} ms`);
      await context.dispose();
      context = undefined;
      assert.deepEqual(named().filter((tid) => mine.includes(tid)), [], 'the thread ends with its context');
    } finally {
      await context?.dispose();
      await model.dispose();
    }
  });

  it('decodes each generated token ahead of JavaScript (machine build): the same tokens, nothing left in the cache when generation stops, saved states and two sequences at once unchanged', async function () {
    if (!hasMachineBuild()) this.skip();
    const llama = await getLlamaFor('off', silentLogger);
    const model = await llama.loadModel({ modelPath: qwen });
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanochat-ahead-'));
    type Addon = { getSequenceKvCacheMaxPosition(id: number): number; sampleToken(...a: unknown[]): Promise<unknown>; getLastDecode(): { count: number; ahead: boolean; tokens: number; ms: number } };
    /** One scripted session on a fresh context: what it generated at each step, and what it saw of the cache. */
    const session = async (ahead: boolean) => {
      const context = await model.createContext({ contextSize: 512, threads: 1, sequences: 2 });
      try {
        const addon = (context as unknown as { _ctx: Addon & { setDecodeAhead(on: boolean): boolean } })._ctx;
        assert.ok(decodeAhead(context), 'the machine build decodes ahead');
        if (!ahead) addon.setDecodeAhead(false);
        // Count the decodes that answered a sample from a token decoded ahead.
        const sample = addon.sampleToken.bind(addon);
        let decodedAhead = 0;
        let seen = addon.getLastDecode().count;
        Object.defineProperty(addon, 'sampleToken', { configurable: true, value: async (...a: unknown[]) => {
          const r = await sample(...a);
          const d = addon.getLastDecode();
          if (d.count !== seen) { seen = d.count; if (d.ahead) decodedAhead++; }
          return r;
        } });
        const generate = async (sequence: ReturnType<typeof context.getSequence>, text: string, count: number) => {
          const out: number[] = [];
          for await (const token of sequence.evaluate(model.tokenize(text, false), { temperature: 0 })) {
            out.push(token);
            if (out.length >= count) break; // stops with the next token decoding ahead
          }
          return out;
        };
        const cached = (sequence: ReturnType<typeof context.getSequence>) => addon.getSequenceKvCacheMaxPosition((sequence as unknown as { _sequenceId: number })._sequenceId);
        const first = context.getSequence();
        const opening = await generate(first, 'Once upon a time', 20);
        const cachedAfterStop = cached(first) + 1;
        const known = first.nextTokenIndex;
        // A follow-up on the same sequence: the token decoded ahead is not the one asked for.
        const followUp = await generate(first, ' The end. Then', 12);
        // And straight after a stop, with the token decoding ahead still running: the next decode stops it.
        const again = await generate(first, ' Later', 6);
        const state = path.join(stateDir, `${ahead ? 'on' : 'off'}.bin`);
        await first.saveStateToFile(state);
        first.dispose();
        const restored = context.getSequence();
        await restored.loadStateFromFile(state, { acceptRisk: true });
        const afterRestore = await generate(restored, ' And so', 8);
        restored.dispose();
        // Two sequences at once: batches with two outputs are never decoded ahead.
        const [a, b] = [context.getSequence(), context.getSequence()];
        const together = await Promise.all([generate(a, 'The quick brown fox', 10), generate(b, 'def main():', 10)]);
        return { opening, followUp, again, afterRestore, together, cachedAfterStop, known, decodedAhead };
      } finally {
        await context.dispose(); // just after a stop: a token may still be decoding ahead
      }
    };
    try {
      const on = await session(true);
      const off = await session(false);
      assert.equal(off.decodedAhead, 0);
      assert.ok(on.decodedAhead >= 30, `decoded ahead ${on.decodedAhead} times in ~48 generated tokens`);
      assert.equal(on.cachedAfterStop, on.known, 'the token decoded ahead is rolled back before the cache is read');
      assert.equal(off.cachedAfterStop, off.known);
      assert.ok(on.opening.length === 20 && on.opening.every((t) => typeof t === 'number'), JSON.stringify(on.opening));
      assert.deepEqual(on.opening, off.opening);
      assert.deepEqual(on.followUp, off.followUp);
      assert.deepEqual(on.again, off.again);
      assert.deepEqual(on.afterRestore, off.afterRestore, 'the saved state holds exactly the tokens JavaScript knows');
      assert.deepEqual(on.together, off.together);
    } finally {
      await model.dispose();
      fs.rmSync(stateDir, { recursive: true, force: true });
    }
  });

  it('gives the same replies to a multi-turn chat with the real template, tools included, with and without decoding ahead (machine build)', async function () {
    if (!hasMachineBuild()) this.skip();
    const settings = testSettings({ model: qwen, contextSize: 2048, maxTokens: 12, temperature: 0, threads: 1 });
    const tools = (vscodeTools as Array<{ name: string; description?: string; inputSchema?: object }>).slice(0, 4).map((t) => ({ name: t.name, description: t.description, parameters: t.inputSchema }));
    const session = async (ahead: boolean) => {
      const log = capture();
      const saved = process.env.NANOCHAT_DECODE_AHEAD;
      if (!ahead) process.env.NANOCHAT_DECODE_AHEAD = 'off';
      const models = new ModelManager({ settings: () => settings, sequences: 2, log });
      const chat = new ChatEngine(models, () => settings, log);
      try {
        const messages: Array<{ role: 'user' | 'assistant'; content: string }> = [];
        const turns: Array<{ text: string; evaluated: number; prompt: number }> = [];
        for (const [i, question] of ['Tell me a story.', 'And then?', 'Which file holds the settings?', 'Thanks.'].entries()) {
          messages.push({ role: 'user', content: question });
          const r = chat.reply({ id: 'conversation', messages: [...messages] }, i === 2 ? { tools } : {});
          let text = '';
          for await (const delta of r) text += delta;
          const stats = await r.stats;
          turns.push({ text, evaluated: stats.evaluatedPromptTokens, prompt: stats.promptTokens });
          messages.push({ role: 'assistant', content: text });
        }
        return { turns, aheadLogged: log.lines.some((l) => /decoding a token ahead/.test(l)) };
      } finally {
        chat.dispose();
        await models.dispose();
        if (saved === undefined) delete process.env.NANOCHAT_DECODE_AHEAD;
        else process.env.NANOCHAT_DECODE_AHEAD = saved;
      }
    };
    const on = await session(true);
    const off = await session(false);
    assert.equal(on.aheadLogged, true, 'the load says it decodes ahead');
    assert.equal(off.aheadLogged, false);
    assert.ok(on.turns.every((t) => t.text.length > 0), JSON.stringify(on.turns));
    assert.ok(on.turns.slice(1).some((t) => t.evaluated < t.prompt), 'follow-ups reuse the cache');
    assert.deepEqual(on.turns, off.turns);
  });

  it('npm run bench:ahead compares decoding ahead with the same context without it, alone and under load, and checks the tokens agree', async function () {
    if (!hasMachineBuild()) this.skip();
    const llama = await getLlamaFor('off', silentLogger);
    const model = await llama.loadModel({ modelPath: qwen });
    try {
      const report = await compareDecodeAhead(model, { threads: [1], rounds: 1, tokens: 16, cores: 1 });
      assert.equal(report.sameTokens, true);
      assert.deepEqual(report.rows.map((r) => [r.threads, r.underLoad]), [[1, false], [1, true]]);
      for (const r of report.rows) {
        for (const side of [r.off, r.on]) {
          assert.ok(side.median > 0 && side.tokensPerSecond.length === 1, JSON.stringify(r));
          assert.ok(side.decodeShare > 0.2 && side.decodeShare <= 1, `the decoding thread's share of a generation: ${side.decodeShare}`);
        }
        assert.equal(r.ratio, Math.round((r.on.median / r.off.median) * 100) / 100);
      }
    } finally {
      await model.dispose();
    }
  });

  it('times generation threads by the decodes themselves when a decode resolves before it ends (decoding ahead)', async function () {
    if (!hasMachineBuild()) this.skip();
    const llama = await getLlamaFor('off', silentLogger);
    const model = await llama.loadModel({ modelPath: qwen });
    const context = await model.createContext({ contextSize: 256, threads: 2, sequences: 1 });
    const recorded: Array<{ threads: number; ms: number }> = [];
    const record = GenerationThreads.prototype.record;
    GenerationThreads.prototype.record = function (this: GenerationThreads, threads: number, ms: number) { recorded.push({ threads, ms }); return record.call(this, threads, ms); };
    try {
      assert.ok(decodeAhead(context));
      assert.ok(applyThreadPlan(context, { prompt: 1, generation: 1 }, () => 2));
      // The decodes JavaScript awaits resolve at once when claimed: their wall time says nothing.
      const addon = (context as unknown as { _ctx: { decodeBatch(): Promise<void> } })._ctx;
      const decode = addon.decodeBatch.bind(addon);
      const awaited: number[] = [];
      Object.defineProperty(addon, 'decodeBatch', { configurable: true, value: async () => { const t = performance.now(); await decode(); awaited.push(performance.now() - t); } });
      let generated = 0;
      for await (const _ of context.getSequence().evaluate(model.tokenize('Once upon a time', false), { temperature: 0 })) if (++generated >= 24) break;
      const median = (x: number[]) => [...x].sort((p, q) => p - q)[Math.floor(x.length / 2)]!;
      assert.ok(recorded.length >= 20, `${recorded.length} single-token decodes recorded`);
      assert.ok(recorded.every((r) => r.threads === 1));
      assert.ok(median(awaited) < median(recorded.map((r) => r.ms)) / 3, `awaited ${median(awaited).toFixed(2)} ms, decoded ${median(recorded.map((r) => r.ms)).toFixed(2)} ms (median)`);
      assert.ok(median(recorded.map((r) => r.ms)) > 1, 'each recorded time is a real decode\'s');
    } finally {
      GenerationThreads.prototype.record = record;
      await context.dispose();
      await model.dispose();
    }
  });

  it('uses the build for this machine when there is one, and restores it from the cache', async function () {
    if (!hasMachineBuild()) this.skip(); // `npm run build-llama` (CI runs it) makes one
    const llama = await getLlamaFor('off', silentLogger);
    assert.equal(llama.buildType, 'localBuild');
    assert.ok(isMachineBuild(llama));
    // Kept outside node_modules, and put back after an install emptied it.
    const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'nanochat-builds-'));
    const builds = path.join(nodeLlamaCppRoot(), 'llama', 'localBuilds');
    const aside = `${builds}.aside-${process.pid}`;
    try {
      // Kept again, it removes what an earlier version kept for this very machine, and only that.
      const kept = (name: string, machine?: object) => {
        fs.mkdirSync(path.join(cache, name, 'localBuilds'), { recursive: true });
        if (machine) fs.writeFileSync(path.join(cache, name, 'machine.json'), JSON.stringify(machine));
        return path.join(cache, name);
      };
      const me = { platform: process.platform, arch: process.arch, cpu: os.cpus()[0]?.model ?? '' };
      const older = kept('node-llama-cpp-0.0.1-older', me);
      const otherCpu = kept('node-llama-cpp-0.0.1-other-cpu', { ...me, cpu: 'Another CPU' });
      const unnamed = kept('node-llama-cpp-0.0.1-unnamed');
      const pruneLog = capture();
      assert.ok(keepMachineBuild(cache, pruneLog));
      assert.ok(!fs.existsSync(older), 'the earlier version\'s build for this machine was removed');
      assert.ok(fs.existsSync(otherCpu) && fs.existsSync(unnamed), 'another processor\'s build, and one that names no machine, stay');
      assert.match(pruneLog.lines.join('\n'), /Removed the llama\.cpp build for this machine made for an earlier version \(node-llama-cpp-0\.0\.1-older\)/);
      fs.rmSync(otherCpu, { recursive: true });
      fs.rmSync(unnamed, { recursive: true });
      fs.renameSync(builds, aside);
      assert.equal(hasMachineBuild(), false);
      assert.equal(restoreMachineBuild(path.join(cache, 'missing')), 'none');
      // A build kept for another version of the patches is not restored, and the log says how to build again.
      const stale = fs.mkdtempSync(path.join(os.tmpdir(), 'nanochat-builds-stale-'));
      fs.mkdirSync(path.join(stale, 'node-llama-cpp-0.0.0-linux-x64-0', 'localBuilds'), { recursive: true });
      const log = capture();
      assert.equal(restoreMachineBuild(stale, log), 'stale');
      fs.rmSync(stale, { recursive: true, force: true });
      assert.match(log.lines.join('\n'), /another version.*Build llama\.cpp for This Machine/);
      assert.equal(restoreMachineBuild(cache), 'restored');
      assert.ok(hasMachineBuild());
      assert.equal(restoreMachineBuild(stale), 'in place');
      // A build in place made for earlier patches (node-llama-cpp gives it the same folder name) is not
      // this build: it is not used, and the current one is restored over it.
      const keyFiles = fs.readdirSync(builds).map((name) => path.join(builds, name, 'nanochat-build-key')).filter((f) => fs.existsSync(f));
      assert.ok(keyFiles.length > 0, 'the restored build says what it was made for');
      const current = fs.readFileSync(keyFiles[0]!, 'utf8');
      for (const file of keyFiles) fs.writeFileSync(file, 'node-llama-cpp-0.0.0-linux-x64-0');
      assert.equal(hasMachineBuild(), false);
      const addon = path.join(path.dirname(keyFiles[0]!), 'Release', 'llama-addon.node');
      const held = fs.openSync(addon, 'r'); // as a process with the old library loaded holds it
      try {
        assert.equal(restoreMachineBuild(cache), 'restored');
        // Removed first, not written over: the holder keeps its own file, now unlinked. (In Node.js 20,
        // which runs these tests, cpSync unlinks a file it replaces anyway; Node.js 24's writes into it.)
        assert.equal(fs.fstatSync(held).nlink, 0);
      } finally {
        fs.closeSync(held);
      }
      assert.equal(fs.readFileSync(keyFiles[0]!, 'utf8'), current);
      assert.ok(hasMachineBuild());
    } finally {
      if (fs.existsSync(aside)) {
        fs.rmSync(builds, { recursive: true, force: true });
        fs.renameSync(aside, builds);
      }
      fs.rmSync(cache, { recursive: true, force: true });
    }
  });
});

describe('prebuilt binaries tested once per machine (Linux)', function () {
  this.timeout(120_000);

  /** One start in a process of its own, on the prebuilt binaries (NANOCHAT_MACHINE_BUILD=off). */
  const start = (model: string) => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'test', 'support', 'prebuiltStart.ts'), model], {
      cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, NANOCHAT_MACHINE_BUILD: 'off' },
    });
    return JSON.parse(out.trim().split('\n').at(-1)!) as { buildType: string; cmakeOptions: Record<string, string>; binaryTests: number; text: string; log: string[] };
  };
  const layouts = () => {
    const builds = path.join(nodeLlamaCppRoot(), 'llama', 'localBuilds');
    return fs.existsSync(builds) ? fs.readdirSync(builds).map((name) => path.join(builds, name)).filter((folder) => {
      const meta = path.join(folder, 'Release', '_nlcBuildMetadata.json');
      return fs.existsSync(meta) && TESTED_PREBUILT_OPTION in (JSON.parse(fs.readFileSync(meta, 'utf8')).buildOptions.customCmakeOptions ?? {});
    }) : [];
  };

  before(function () {
    if (process.platform !== 'linux') this.skip();
    forgetTestedPrebuilts();
  });
  after(() => { forgetTestedPrebuilts(); });

  it('loads them without node-llama-cpp\'s binary test once they passed it here, and tests them again for other binaries or a broken layout', async () => {
    const model = await testModel('stories260K.gguf');
    const prebuilt = path.join(REPO_ROOT, 'node_modules', '@node-llama-cpp', `linux-${process.arch}`, 'bins', `linux-${process.arch}`);
    assert.ok(fs.existsSync(path.join(prebuilt, 'llama-addon.node')), `node-llama-cpp's prebuilt CPU binaries are installed (${prebuilt})`);

    // The first start tests the prebuilt binaries (a forked child loads them) and remembers they passed.
    const first = start(model);
    assert.equal(first.buildType, 'prebuilt');
    assert.ok(first.binaryTests >= 1, `node-llama-cpp tested the binary: ${JSON.stringify(first)}`);
    assert.match(first.log.join('\n'), /passed node-llama-cpp's test on this machine/);
    const [layout, ...others] = layouts();
    assert.ok(layout && others.length === 0, `one layout: ${layouts().join(', ')}`);
    const release = path.join(layout, 'Release');
    const real = fs.realpathSync(prebuilt);
    for (const file of fs.readdirSync(real).filter((f) => f !== '_nlcBuildMetadata.json')) {
      assert.equal(fs.readlinkSync(path.join(release, file)), path.join(real, file), `${file} links to the prebuilt file`);
    }
    const meta = JSON.parse(fs.readFileSync(path.join(release, '_nlcBuildMetadata.json'), 'utf8')) as { buildOptions: { gpu: unknown; customCmakeOptions: Record<string, string>; platformInfo: { name: string } } };
    assert.equal(meta.buildOptions.gpu, false);
    assert.deepEqual(Object.keys(meta.buildOptions.customCmakeOptions), [TESTED_PREBUILT_OPTION]);
    assert.match(meta.buildOptions.customCmakeOptions[TESTED_PREBUILT_OPTION]!, /^[0-9a-f]{16}$/);

    // The next start loads the same binaries as a local build, untested, and they generate the same text.
    const second = start(model);
    assert.equal(second.buildType, 'localBuild');
    assert.equal(second.binaryTests, 0, JSON.stringify(second));
    assert.deepEqual(second.cmakeOptions, meta.buildOptions.customCmakeOptions);
    assert.equal(second.text, first.text);
    assert.ok(second.text.trim().split(/\s+/).length >= 5, second.text);
    assert.match(second.log.join('\n'), /prebuilt binaries, tested on this machine at an earlier start/);

    // A layout made for other binaries or another machine (another name) is not loaded: the binaries are
    // tested again, and it is replaced.
    const elsewhere = path.join(path.dirname(layout), 'linux-x64-made-for-another-machine');
    fs.renameSync(layout, elsewhere);
    const third = start(model);
    assert.equal(third.buildType, 'prebuilt');
    assert.ok(third.binaryTests >= 1);
    assert.ok(!fs.existsSync(elsewhere), 'the other layout was removed');
    assert.deepEqual(layouts(), [layout]);

    // A broken layout (a link to nothing) falls back to the tested prebuilt binaries, and is made again.
    fs.rmSync(path.join(release, 'llama-addon.node'));
    fs.symlinkSync(path.join(real, 'missing-addon.node'), path.join(release, 'llama-addon.node'));
    const fourth = start(model);
    assert.equal(fourth.buildType, 'prebuilt');
    assert.ok(fourth.binaryTests >= 1);
    assert.equal(fs.readlinkSync(path.join(release, 'llama-addon.node')), path.join(real, 'llama-addon.node'));
    assert.equal(fourth.text, first.text);
    assert.equal(start(model).binaryTests, 0);
  });
});

describe('prompt states on disk (the first reply after a restart)', function () {
  this.timeout(300_000);

  it('saves a long preamble once, loads it in the next session, and survives a damaged state file', async () => {
    const qwen = await likeModel('qwen2.5-0.5b-instruct');
    const settings = testSettings({ model: qwen, contextSize: 2048, maxTokens: 4, temperature: 0 });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanochat-states-'));
    const log = capture();
    const states = new PromptStates({ dir, log });
    const system = corpusOfSize(3000);
    const session = async (withStates: boolean) => {
      const models = new ModelManager({ settings: () => settings, sequences: 1, log });
      const chat = new ChatEngine(models, () => settings, log, withStates ? states : undefined);
      try {
        const r = chat.reply({ messages: [{ role: 'user', content: 'Summarize the notes.' }] }, { systemPrompt: system, maxTokens: 2 });
        let text = '';
        for await (const delta of r) text += delta;
        return { stats: await r.stats, text };
      } finally {
        chat.dispose();
        await models.dispose();
      }
    };
    try {
      const first = await session(true);
      assert.ok(first.stats.promptTokens > 600, `a preamble worth saving: ${first.stats.promptTokens} tokens`);
      assert.ok(first.stats.evaluatedPromptTokens >= first.stats.promptTokens - 1, 'the first session evaluates it all (and saves the preamble)');
      const files = fs.readdirSync(dir).filter((f) => f.endsWith('.state'));
      assert.equal(files.length, 1);
      const restarted = await session(true);
      assert.ok(restarted.stats.evaluatedPromptTokens < 30, `after a restart only the user's turn is evaluated: ${restarted.stats.evaluatedPromptTokens} of ${restarted.stats.promptTokens}`);
      assert.equal(restarted.text, first.text, 'the same reply as with the preamble evaluated');
      // A damaged state file: refused, removed, the preamble evaluated (and saved) again.
      const file = path.join(dir, files[0]!);
      fs.truncateSync(file, Math.floor(fs.statSync(file).size / 3));
      const damaged = await session(true);
      assert.ok(damaged.stats.evaluatedPromptTokens >= damaged.stats.promptTokens - 1);
      assert.equal(damaged.text, first.text);
      assert.ok(log.lines.some((l) => /damaged or incomplete/.test(l)), log.lines.join('\n'));
      assert.ok(fs.statSync(file).size > 0 && (await session(true)).stats.evaluatedPromptTokens < 30, 'saved again, and loaded next time');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** A C++ test program compiled into `dir` and linked against the ggml libraries in `libraries` (headers from the bundled source). */
function compileAgainstGgml(program: string, libraries: string, dir: string): string {
  const exe = path.join(dir, path.basename(program, '.cpp'));
  const ggml = fs.readdirSync(libraries).filter((file) => /^libggml.*\.so$/.test(file)).map((file) => path.join(libraries, file));
  execFileSync('c++', ['-O1', '-std=c++17', '-I', path.join(llamaCppSource(), 'ggml', 'include'), program, '-o', exe, ...ggml, `-Wl,-rpath,${libraries}`, '-lpthread'], { stdio: 'pipe' });
  return exe;
}

/**
 * test/native/quant-matmul.cpp compiled against the ggml libraries in `libraries`: q4_0, q5_0, q8_0,
 * q4_K and q6_K weights of row lengths with odd and even block counts, times 1-5 activation rows on 1-3
 * threads, from a plain buffer and (q4_0, q4_K) the repacked one the CPU backend loads them into,
 * against products computed in double precision. Every case must agree.
 */
function agreesWithReference(libraries: string): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanochat-quant-matmul-'));
  try {
    const exe = compileAgainstGgml(path.join(REPO_ROOT, 'test', 'native', 'quant-matmul.cpp'), libraries, dir);
    const run = spawnSync(exe, ['1', '2', '3'], { encoding: 'utf8', maxBuffer: 64 << 20 });
    const failures = run.stdout.split('\n').filter((line) => /^FAIL/.test(line)).slice(0, 5).join('\n');
    const summary = /(\d+)\/(\d+) cases agree/.exec(run.stdout);
    assert.equal(run.status, 0, `quant-matmul (${libraries}) failed:\n${failures}\n${run.stderr.slice(-2000)}`);
    assert.ok(summary && summary[1] === summary[2] && Number(summary[2]) >= 1000, `quant-matmul: ${summary?.[0] ?? 'no summary'}`);
    // Every weight type and both buffers were exercised.
    for (const kind of ['q4_0 plain', 'q4_0 repack', 'q5_0 plain', 'q8_0 plain', 'q4_K plain', 'q4_K repack', 'q6_K plain']) {
      assert.match(run.stdout, new RegExp(`^ok +${kind.replace(' ', ' +')} +k=`, 'm'), kind);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * ggml's libraries built from the bundled llama.cpp with nanochat's patches for AVX2 (and AVX-VNNI),
 * without AVX-512: kept in ~/.cache/nanochat/test-builds under the patches' hash (~35 s each to build).
 */
function ggmlBuiltFor(name: string, vnni: boolean): string {
  const patches = llamaCppPatches();
  const hash = createHash('sha256');
  for (const patch of patches) hash.update(fs.readFileSync(patch));
  const source = llamaCppSource();
  const commit = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: source, encoding: 'utf8' }).trim();
  const dir = path.join(os.homedir(), '.cache', 'nanochat', 'test-builds', `ggml-${name}-${commit}-${hash.digest('hex').slice(0, 12)}`);
  const bin = path.join(dir, 'bin');
  if (fs.existsSync(path.join(bin, 'libggml-cpu.so'))) return bin;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `nanochat-ggml-${name}-`));
  try {
    const tree = path.join(work, 'src');
    fs.mkdirSync(tree);
    // The release's files (not its models), then the patches, as the machine build applies them.
    const archive = path.join(work, 'src.tar');
    execFileSync('git', ['archive', '-o', archive, 'HEAD', '--', '.', ':(exclude)models'], { cwd: source });
    execFileSync('tar', ['-xf', archive, '-C', tree]);
    for (const patch of patches) execFileSync('git', ['apply', patch], { cwd: tree, stdio: 'pipe' });
    const build = path.join(work, 'build');
    execFileSync('cmake', ['-S', tree, '-B', build, '-DCMAKE_BUILD_TYPE=Release', '-DGGML_NATIVE=OFF', '-DGGML_AVX=ON', '-DGGML_AVX2=ON', '-DGGML_FMA=ON',
      '-DGGML_F16C=ON', '-DGGML_BMI2=ON', `-DGGML_AVX_VNNI=${vnni ? 'ON' : 'OFF'}`, '-DGGML_AVX512=OFF', '-DGGML_OPENMP=OFF', '-DLLAMA_CURL=OFF', '-DLLAMA_OPENSSL=OFF',
      '-DLLAMA_BUILD_TESTS=OFF', '-DLLAMA_BUILD_EXAMPLES=OFF', '-DLLAMA_BUILD_TOOLS=OFF', '-DLLAMA_BUILD_SERVER=OFF'], { stdio: 'pipe' });
    execFileSync('cmake', ['--build', build, '-j', String(os.availableParallelism()), '--target', 'ggml-cpu', 'ggml'], { stdio: 'pipe' });
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    fs.cpSync(path.join(build, 'bin'), bin, { recursive: true, verbatimSymlinks: true });
    return bin;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
