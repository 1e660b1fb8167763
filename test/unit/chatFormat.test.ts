import assert from 'node:assert/strict';
import childProcess, { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { describeChatWrapper, rebuildChatWrapper, renderSample } from '../../src/core/engine/chatFormat';
import { modelChatTemplate, templateTrueWrapper } from '../../src/core/engine/chatTemplate';
import { getLlamaFor, importNodeLlamaCpp } from '../../src/core/engine/llama';
import { ModelManager } from '../../src/core/engine/models';
import { forkOffThread } from '../../src/core/forkOffThread';
import { silentLogger } from '../../src/core/log';
import type { KeyValueStore } from '../../src/core/modelFiles/library';
import { REPO_ROOT, testModel, vocabDir } from '../support/models';
import { likeModel } from '../support/likeModels';
import { testSettings } from '../support/settings';

describe('chat format: resolved once per model file, off the event loop', function () {
  this.timeout(120_000);

  it('rebuilds each resolved wrapper from plain data, rendering exactly as the original (specialized and Jinja)', async function () {
    const lib = await importNodeLlamaCpp();
    const llama = await getLlamaFor('off', silentLogger);
    const files = [await testModel('stories260K-chatml.gguf'), await testModel('stories260K.gguf')];
    const vocab = vocabDir();
    if (vocab) files.push(path.join(vocab, 'ggml-vocab-phi-3.gguf'));
    const seen: string[] = [];
    for (const file of files) {
      const model = await llama.loadModel({ modelPath: file, vocabOnly: true });
      try {
        const original = lib.resolveChatWrapper(model);
        const format = describeChatWrapper(original, lib)!;
        assert.ok(format, `${path.basename(file)}: ${original.wrapperName} is one of node-llama-cpp's wrappers`);
        const copy = JSON.parse(JSON.stringify(format)); // as it crosses from the child process
        const rebuilt = rebuildChatWrapper(copy, model, lib);
        assert.ok(rebuilt, `${path.basename(file)}: ${format.type} rebuilt`);
        assert.equal(rebuilt!.wrapperName, original.wrapperName);
        assert.equal(renderSample(rebuilt!), renderSample(original));
        assert.equal(rebuildChatWrapper({ ...copy, sample: copy.sample.replace('Hello', 'Howdy') }, model, lib), undefined, 'a wrapper that renders differently is refused');
        seen.push(format.type);
      } finally {
        await model.dispose();
      }
    }
    assert.ok(seen.includes('chatML'), seen.join(', '));
    if (vocab) assert.ok(seen.includes('jinjaTemplate'), `Phi-3's own template: ${seen.join(', ')}`);
  });

  it('resolves in a child process on the first load, then comes from the cache; the same wrapper either way', async () => {
    execFileSync(process.execPath, ['esbuild.mjs'], { cwd: REPO_ROOT });
    const data = new Map<string, unknown>();
    const cache: KeyValueStore = { get: <T>(key: string) => data.get(key) as T | undefined, update: async (key, value) => { data.set(key, JSON.parse(JSON.stringify(value))); } };
    // A real 152K-token vocabulary: resolving its format here would hold the event loop ~0.4 s.
    const model = await likeModel('qwen2.5-0.5b-instruct');
    const settings = testSettings({ model });
    const sources: string[] = [];
    const forksHere = spyOnForks();
    for (let i = 0; i < 2; i++) {
      const manager = new ModelManager({ settings: () => settings, chatFormat: { workerScript: path.join(REPO_ROOT, 'dist', 'chatFormatWorker.js'), cache } });
      try {
        const loaded = await manager.load();
        sources.push(loaded.info.chatFormatSource);
        assert.match(loaded.info.chatFormat, /Qwen|ChatML/);
        const lib = await importNodeLlamaCpp();
        assert.equal(renderSample(loaded.chatWrapper), renderSample(templateTrueWrapper(lib.resolveChatWrapper(loaded.model), modelChatTemplate(loaded.model)!, lib)));
      } finally {
        await manager.dispose();
      }
    }
    assert.deepEqual(sources, ['worker', 'cache']);
    assert.equal(forksHere.stop(), 0, 'the child process is forked from a worker thread, never from this one');
    const here = new ModelManager({ settings: () => settings });
    try {
      assert.equal((await here.load()).info.chatFormatSource, 'here', 'without a worker script: in this process, as node-llama-cpp does');
    } finally {
      await here.dispose();
    }
    // A tiny vocabulary (512 tokens) resolves here in milliseconds: no child process to wait ~2 s for.
    const tiny = testSettings({ model: await testModel('stories260K-chatml.gguf') });
    const small = new ModelManager({ settings: () => tiny, chatFormat: { workerScript: path.join(REPO_ROOT, 'dist', 'chatFormatWorker.js') } });
    try {
      const loaded = await small.load();
      assert.equal(loaded.info.chatFormatSource, 'here');
      assert.equal(loaded.info.vocabularySize, 512);
      assert.equal(loaded.info.chatFormat, 'ChatML');
    } finally {
      await small.dispose();
    }
  });
});

/** Counts child_process.fork calls made on this thread (a worker thread has its own module). */
function spyOnForks(): { stop(): number } {
  const original = childProcess.fork;
  let calls = 0;
  childProcess.fork = ((...args: Parameters<typeof original>) => { calls++; return original(...args); }) as typeof original;
  syncBuiltinESMExports();
  return { stop: () => { childProcess.fork = original; syncBuiltinESMExports(); return calls; } };
}

describe('forkOffThread: a child process forked from a worker thread', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanochat-fork-')); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const script = (name: string, body: string) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, body);
    return file;
  };
  const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };

  it('sends the request and resolves with the first answer; the child is a child of this process, forked on another thread', async () => {
    const echo = script('echo.js', "process.once('message', (m) => process.send({ doubled: m.n * 2, ppid: process.ppid, env: process.env.NANOCHAT_FORK_TEST }));");
    const forksHere = spyOnForks();
    const answer = await forkOffThread<{ n: number }, { doubled: number; ppid: number; env: string }>(echo, { n: 21 }, { env: { ...process.env, NANOCHAT_FORK_TEST: 'passed on' }, timeoutMs: 30_000 });
    assert.equal(forksHere.stop(), 0);
    assert.deepEqual(answer, { doubled: 42, ppid: process.pid, env: 'passed on' });
  });

  it("rejects with the child's own error, with a child that dies, and with a script that does not exist", async () => {
    const failing = script('fails.js', "process.once('message', () => process.send({ error: 'no format in this file' }));");
    await assert.rejects(forkOffThread(failing, {}, { timeoutMs: 30_000 }), /no format in this file/);
    const dying = script('dies.js', "process.once('message', () => process.exit(3));");
    await assert.rejects(forkOffThread(dying, {}, { timeoutMs: 30_000 }), /exit code 3/);
    await assert.rejects(forkOffThread(path.join(dir, 'missing.js'), {}, { timeoutMs: 30_000 }), /exit code 1/);
  });

  it('kills a child that does not answer in time', async () => {
    const pidFile = path.join(dir, 'hung.pid');
    const hung = script('hangs.js', `require('fs').writeFileSync(${JSON.stringify(pidFile)}, String(process.pid)); process.on('disconnect', () => {}); setInterval(() => {}, 1000);`);
    await assert.rejects(forkOffThread(hung, {}, { timeoutMs: 1500 }), /no answer within 2 s/);
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    for (let i = 0; i < 50 && alive(pid); i++) await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(alive(pid), false, `process ${pid} still runs`);
  });
});
