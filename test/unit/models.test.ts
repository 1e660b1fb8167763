import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ModelFileError } from '../../src/core/errors';
import { ModelManager, type ModelState } from '../../src/core/engine/models';
import type { Settings } from '../../src/core/settings';
import { writeBadFiles } from '../support/badFiles';
import { testModel } from '../support/models';
import { testSettings } from '../support/settings';

describe('ModelManager', () => {
  let model: string;
  let chatml: string;
  let settings: Settings;
  let manager: ModelManager;
  let states: ModelState[];
  const kind = () => manager.state.kind as string;

  before(async () => {
    model = await testModel('stories260K.gguf');
    chatml = await testModel('stories260K-chatml.gguf');
  });
  beforeEach(() => {
    settings = testSettings({ model });
    manager = new ModelManager({ settings: () => settings });
    states = [];
    manager.onDidChangeState((s) => states.push(s));
  });
  afterEach(() => manager.dispose());

  it('starts with no model and loads in the background, announcing each state', async () => {
    assert.equal(kind(), 'none');
    const loading = manager.load();
    assert.equal(kind(), 'loading');
    const loaded = await loading;
    assert.equal(kind(), 'ready');
    assert.equal(states[0].kind, 'loading');
    assert.equal(states.at(-1)!.kind, 'ready');
    const info = loaded.info;
    assert.equal(info.path, model);
    assert.equal(info.architecture, 'llama');
    assert.equal(info.threads, 1);
    assert.equal(info.backend, 'cpu');
    assert.ok(info.contextSize >= 1024 && info.contextSize <= 2048, `context ${info.contextSize}`);
    assert.ok(info.loadMs >= 0);
  });

  it('shares one load between concurrent requests for the same file', async () => {
    const [a, b, c] = await Promise.all([manager.load(), manager.load(model), manager.acquire()]);
    assert.equal(a, b);
    assert.equal(a, c.model);
    c.dispose();
    assert.equal(states.filter((s) => s.kind === 'ready').length, 1);
  });

  it('disposes the previous model when another is loaded', async () => {
    const first = await manager.load(model);
    const second = await manager.load(chatml);
    assert.equal(first.disposed, true);
    assert.equal(first.model.disposed, true);
    assert.equal(second.info.name, 'stories260K-chatml');
    assert.equal(manager.model, second);
  });

  it('unloads on request and after the idle time, and loads again on demand', async () => {
    await manager.load();
    await manager.unload();
    assert.deepEqual(manager.state, { kind: 'unloaded', path: model, name: manager.state.kind === 'unloaded' ? manager.state.name : '', reason: 'user' });
    settings = { ...settings, idleUnloadMinutes: 0.002 }; // 120 ms
    const lease = await manager.acquire();
    const loaded = lease.model;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(kind(), 'ready', 'a model in use is never unloaded');
    lease.dispose();
    const unloaded = await new Promise<ModelState>((resolve) => manager.onDidChangeState((s) => s.kind === 'unloaded' && resolve(s)));
    assert.equal(unloaded.kind === 'unloaded' && unloaded.reason, 'idle');
    assert.equal(loaded.disposed, true);
    assert.equal(loaded.model.disposed, true);
    const again = await manager.acquire();
    assert.equal(kind(), 'ready');
    again.dispose();
  });

  it('reports a missing setting as "no model" without touching llama.cpp', async () => {
    settings = { ...settings, model: '' };
    await assert.rejects(manager.acquire(), { name: 'NoModelError' });
  });

  it('survives every broken file, reports it in the state, then loads a good one', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanochat-bad-'));
    try {
      for (const bad of writeBadFiles(dir, model)) {
        await assert.rejects(manager.load(bad.file), (err: unknown) => err instanceof ModelFileError && bad.expect.includes(err.problem));
        assert.equal(kind(), 'error', bad.name);
      }
      const good = await manager.load(model);
      assert.equal(good.info.path, model);
      assert.equal(kind(), 'ready');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reloads when a load-time setting changes', async () => {
    const first = await manager.load();
    settings = { ...settings, contextSize: 512 };
    manager.onSettingsChanged();
    const ready = await new Promise<ModelState>((resolve) => manager.onDidChangeState((s) => s.kind === 'ready' && resolve(s)));
    assert.equal(first.disposed, true);
    assert.equal(ready.kind === 'ready' && ready.info.contextSize, 512);
  });

  it('follows a hand edit of the model setting while a model is loaded, and unloads when it is cleared', async () => {
    const first = await manager.load();
    assert.equal(first.info.path, model);
    settings = { ...settings, model: chatml };
    manager.onSettingsChanged();
    const ready = await new Promise<ModelState>((resolve) => manager.onDidChangeState((s) => s.kind === 'ready' && resolve(s)));
    assert.equal(ready.kind === 'ready' && ready.info.path, chatml);
    assert.equal(first.disposed, true);
    assert.equal(manager.selectedPath, chatml);
    settings = { ...settings, model: '' };
    manager.onSettingsChanged();
    await new Promise<void>((resolve) => manager.onDidChangeState((s) => s.kind === 'none' && resolve()));
    assert.equal(manager.model, undefined);
    assert.equal(manager.selectedPath, undefined);
  });

  it('select() writes the setting, then loads: one owner of the choice', async () => {
    const written: string[] = [];
    const owner = new ModelManager({ settings: () => settings, persistSelection: async (p) => { written.push(p); settings = { ...settings, model: p }; } });
    try {
      await owner.select(chatml);
      assert.deepEqual(written, [chatml]);
      const lease = await owner.acquire();
      lease.dispose();
      const loaded = lease.model;
      assert.equal(loaded.info.path, chatml);
      assert.equal(settings.model, chatml);
      owner.onSettingsChanged(); // the settings event that the write fires changes nothing more
      assert.equal(owner.model, loaded);
      assert.equal(loaded.info.chatFormat, 'ChatML', 'the chat format is resolved once, at load');
    } finally {
      await owner.dispose();
    }
  });

  it('creates the sequence pool with the context and disposes it with the model', async () => {
    const loaded = await manager.load();
    const lease = await manager.acquire();
    const { slot } = await loaded.sequences.take([]);
    assert.equal(loaded.sequences.size, 1);
    loaded.sequences.release(slot);
    lease.dispose();
    await manager.unload('user');
    assert.equal(loaded.sequences.size, 0);
    assert.equal(slot.sequence.disposed, true);
    await assert.rejects(loaded.sequences.take([]), /unloaded/);
  });
});
