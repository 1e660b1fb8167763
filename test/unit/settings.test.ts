import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { defaultSettings, parseSettings, settingsShape, type SettingKey } from '../../src/core/settings';
import { resolveThreads } from '../../src/core/engine/threads';
import { panelSettingsSchema } from '../../src/protocol/panel';
import { manifestConfiguration } from '../../tools/syncManifest';
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
