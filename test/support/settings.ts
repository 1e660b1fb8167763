import { defaultSettings, type Settings } from '../../src/core/settings';

/** Settings for tests: one thread (see ../shared/models/README.md), CPU only, deterministic. */
export function testSettings(overrides: Partial<Settings> = {}): Settings {
  return { ...defaultSettings(), threads: 1, gpu: 'off', temperature: 0, seed: 42, contextSize: 1024, maxTokens: 48, idleUnloadMinutes: 0, ...overrides };
}
