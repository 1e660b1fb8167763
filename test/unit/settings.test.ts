import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { defaultSettings, parseSettings, resolveThreads, settingsShape, type SettingKey } from '../../src/core/settings';
import { REPO_ROOT } from '../support/models';

describe('settings', () => {
  it('has a default for every setting', () => {
    const s = defaultSettings();
    assert.equal(s.maxHistoryMessages, 10);
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

  it('leaves one core to the editor by default', () => {
    assert.equal(resolveThreads(0, 2), 1);
    assert.equal(resolveThreads(0, 8), 7);
    assert.equal(resolveThreads(0, 1), 1);
    assert.equal(resolveThreads(3, 8), 3);
  });

  it('is mirrored exactly by contributes.configuration in package.json', () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'));
    const properties: Record<string, Record<string, unknown>> = manifest.contributes.configuration.properties;
    const defaults = defaultSettings();
    const contributed = Object.keys(properties).map((k) => k.replace(/^nanochat\./, '')).sort();
    assert.deepEqual(contributed, Object.keys(settingsShape).sort());
    for (const key of Object.keys(settingsShape) as SettingKey[]) {
      const prop = properties[`nanochat.${key}`];
      assert.deepEqual(prop.default, defaults[key], `default of nanochat.${key}`);
      assert.ok(prop.markdownDescription || prop.description, `description of nanochat.${key}`);
      const json = settingsShape[key].toJSONSchema() as Record<string, unknown>;
      if (json.enum) assert.deepEqual(prop.enum, json.enum, `enum of nanochat.${key}`);
      if (typeof json.minimum === 'number') assert.equal(prop.minimum, json.minimum, `minimum of nanochat.${key}`);
      if (typeof json.maximum === 'number') assert.equal(prop.maximum, json.maximum, `maximum of nanochat.${key}`);
      const type = json.type === 'integer' ? ['integer', 'number'] : [json.type];
      assert.ok(type.includes(prop.type as string), `type of nanochat.${key}: ${prop.type} vs ${json.type}`);
    }
  });
});
