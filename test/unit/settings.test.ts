import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { defaultSettings, parseSettings, settingsShape, type SettingKey } from '../../src/core/settings';
import { GenerationThreads, planThreads, promptThreads } from '../../src/core/engine/threads';
import { panelSettingsSchema } from '../../src/protocol/panel';
import { manifestConfiguration } from '../../tools/syncManifest';
import { REPO_ROOT } from '../support/models';

describe('settings', () => {
  it('has a default for every setting', () => {
    const s = defaultSettings();
    assert.equal(s.maxHistoryMessages, 100);
    assert.equal(s.gpu, 'auto');
    assert.equal(s.threads, 0);
    assert.deepEqual(Object.keys(s).sort(), Object.keys(settingsShape).sort());
  });

  it('keeps valid values and replaces each invalid one by its default, naming the setting', () => {
    const { settings, problems } = parseSettings({ temperature: 0.2, contextSize: 12, gpu: 'quantum', topP: 'high', maxTokens: 64 });
    assert.equal(settings.temperature, 0.2);
    assert.equal(settings.maxTokens, 64);
    assert.equal(settings.contextSize, defaultSettings().contextSize);
    assert.equal(settings.gpu, 'auto');
    assert.equal(settings.topP, defaultSettings().topP);
    assert.deepEqual(problems.map((p) => p.key).sort(), ['contextSize', 'gpu', 'topP']);
    for (const p of problems) assert.match(p.message, new RegExp(`nanochat\\.${p.key}.*default`));
  });

  it('never throws, whatever it is given', () => {
    const weird: Record<string, unknown> = { model: 42, threads: -5, seed: 1.5, systemPrompt: { a: 1 }, idleUnloadMinutes: Number.NaN, unknownKey: true };
    const { settings, problems } = parseSettings(weird);
    assert.equal(problems.length, 5);
    assert.deepEqual(settings, defaultSettings());
  });

  it('counts physical performance cores by default, prompts on all of them', () => {
    // llama.cpp's cpuMathCores: 8 on a 16-thread laptop with 8 performance cores.
    assert.deepEqual(planThreads(0, 8), { generation: 8, prompt: 8 });
    assert.deepEqual(planThreads(0, 2), { generation: 2, prompt: 2 });
    assert.deepEqual(planThreads(0, 0), { generation: 1, prompt: 1 });
    assert.deepEqual(planThreads(3, 8), { generation: 3, prompt: 8 }, 'nanochat.threads sets generation only');
    assert.deepEqual(planThreads(12, 8), { generation: 12, prompt: 12 });
    assert.deepEqual(planThreads(0, 8, 4), { generation: 8, prompt: 4, promptFixed: true }, 'nanochat.promptThreads, kept under load');
  });

  it('reads prompts on the cores other programs leave idle, at least one; a prompt count the user set is kept', () => {
    const plan = planThreads(0, 8);
    assert.equal(promptThreads(plan, () => 8), 8);
    assert.equal(promptThreads(plan, () => 3), 3);
    assert.equal(promptThreads(plan, () => 0), 1);
    assert.equal(promptThreads(plan, () => undefined), 8, 'where the system does not say: every core');
    assert.equal(promptThreads(planThreads(0, 8, 6), () => 0), 6);
  });

  it('generates on the thread count that is fastest now, and notices when that changes', () => {
    const threads = new GenerationThreads(2, () => undefined);
    const run = (tokens: number, msFor: (count: number) => number) => {
      const used: number[] = [];
      for (let i = 0; i < tokens; i++) { const n = threads.next(); used.push(n); threads.record(n, msFor(n)); }
      return used;
    };
    // Idle: two threads are faster; one is tried, loses, and is tried less and less often.
    const idle = run(400, (n) => (n === 2 ? 10 : 15));
    assert.equal(threads.best(), 2);
    assert.ok(idle.filter((n) => n === 1).length <= 16, `tries of one thread while idle: ${idle.filter((n) => n === 1).length}`);
    // Under load two threads collapse: within a few hundred tokens generation moves to one thread.
    const loaded = run(600, (n) => (n === 2 ? 150 : 35));
    assert.equal(threads.best(), 1);
    assert.ok(loaded.slice(-100).filter((n) => n === 2).length <= 4, 'two threads are only tried now and then');
    // The load ends: two threads win again.
    run(600, (n) => (n === 2 ? 10 : 15));
    assert.equal(threads.best(), 2);
    // A sudden collapse (a spinning barrier waiting out other programs: seconds a token) is left within
    // a few tokens, not at the next scheduled try.
    const collapse = run(12, (n) => (n === 2 ? 2000 : 35));
    assert.equal(threads.best(), 1);
    assert.ok(collapse.filter((n) => n === 2).length <= 4, `tokens still on two threads: ${collapse.join('')}`);
    // A fresh plan starts on the fewest threads and moves up after one token when that is faster.
    const fresh = new GenerationThreads(2, () => undefined);
    assert.equal(fresh.next(), 1);
  });

  it('tries more threads only when the CPUs they need are idle', () => {
    let free = 0;
    const threads = new GenerationThreads(2, () => free);
    const run = (tokens: number) => {
      const used: number[] = [];
      for (let i = 0; i < tokens; i++) { const n = threads.next(); used.push(n); threads.record(n, n === 2 ? 10 : 15); }
      return used;
    };
    // Every CPU busy elsewhere: two threads are never tried, however long generation runs.
    assert.deepEqual([...new Set(run(200))], [1]);
    free = 1;
    assert.deepEqual([...new Set(run(200))], [1], 'one idle CPU is not enough for two threads');
    // The CPUs come free: two threads are tried within a try interval, and win.
    free = 2;
    const after = run(64);
    assert.ok(after.includes(2), after.join(''));
    assert.equal(threads.best(), 2);
    // Fewer threads are always tried: they need no idle CPU.
    free = 0;
    assert.ok(run(400).includes(1));
  });

  it('is mirrored exactly by contributes.configuration in package.json (npm run sync-manifest writes it)', () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'));
    const { properties, restricted } = manifestConfiguration();
    assert.deepEqual(manifest.contributes.configuration.properties, properties, 'run npm run sync-manifest');
    assert.deepEqual(manifest.capabilities.untrustedWorkspaces.restrictedConfigurations, restricted);
    assert.equal(manifest.capabilities.untrustedWorkspaces.supported, 'limited');
    // Every setting that names a file or folder is restricted; the protocol's panel settings share the schema's ranges.
    assert.deepEqual(properties['nanochat.maxTokens'].maximum, panelSettingsSchema.shape.maxTokens.maxValue);
    assert.deepEqual(properties['nanochat.temperature'].maximum, panelSettingsSchema.shape.temperature.maxValue);
    for (const key of Object.keys(settingsShape) as SettingKey[]) assert.ok(properties[`nanochat.${key}`].markdownDescription, `description of nanochat.${key}`);
  });
});
