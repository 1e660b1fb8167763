import { z } from 'zod';

/**
 * Every nanochat setting: one zod schema with its default. `contributes.configuration` in
 * package.json mirrors it (a unit test keeps the two in step).
 */
export const settingsShape = {
  model: z.string().trim().default('')
    .describe('Path to a GGUF file, or the id of an installed model. Empty: no model selected.'),
  modelsFolder: z.string().trim().default('')
    .describe('Folder for downloaded models. Empty: the extension\'s own storage.'),
  contextSize: z.number().int().min(256).max(131072).default(4096)
    .describe('Context window in tokens (capped at what the model was trained for).'),
  maxTokens: z.number().int().min(1).max(32768).default(1024)
    .describe('Most tokens one reply may generate.'),
  temperature: z.number().min(0).max(2).default(0.7)
    .describe('Sampling temperature; 0 is deterministic.'),
  topK: z.number().int().min(0).max(1000).default(40).describe('Top-k sampling; 0 disables it.'),
  topP: z.number().min(0).max(1).default(0.95).describe('Top-p (nucleus) sampling; 1 disables it.'),
  repeatPenalty: z.number().min(1).max(2).default(1.1).describe('Penalty for repeated tokens; 1 disables it.'),
  seed: z.number().int().min(-1).max(2 ** 31 - 1).default(-1).describe('Sampling seed; -1 picks a random one.'),
  threads: z.number().int().min(0).max(256).default(0)
    .describe('CPU threads for generating tokens; 0 uses the physical performance cores (not logical CPUs or efficiency cores).'),
  promptThreads: z.number().int().min(0).max(256).default(0)
    .describe('CPU threads for reading prompts (long #file context, tool lists); 0 uses every physical performance core that other programs leave idle (at least one). A number here is used as is, busy or not.'),
  gpu: z.enum(['auto', 'off', 'cuda', 'vulkan', 'metal']).default('auto')
    .describe('GPU backend; auto detects one and falls back to the CPU.'),
  gpuLayers: z.number().int().min(-1).max(1000).default(-1)
    .describe('Layers to offload to the GPU; -1 lets nanochat decide from free VRAM.'),
  systemPrompt: z.string().max(20000)
    .default('You are nanochat, a helpful assistant that runs locally inside VS Code. Answer clearly and concisely.')
    .describe('System prompt that starts every conversation.'),
  thinking: z.enum(['on', 'off']).default('on')
    .describe('For models that think before answering (Qwen3): `on` lets them, `off` asks the chat template to skip thinking. Thoughts stream apart from the answer and never enter the history.'),
  thinkingBudget: z.number().int().min(0).max(32768).default(0)
    .describe('Most tokens a model may spend thinking before it must answer; 0 means no limit.'),
  maxHistoryMessages: z.number().int().min(0).max(1000).default(100)
    .describe('Most earlier messages sent with each request. The context window decides first: when the history outgrows it, the oldest turns are dropped in one step, so later turns reuse the cached prompt.'),
  maxMessageLength: z.number().int().min(100).max(10_000_000).default(100_000)
    .describe('Longest message accepted, in characters.'),
  generationTimeoutSeconds: z.number().int().min(0).max(86400).default(300)
    .describe('Longest a reply may take, in seconds; 0 means no limit.'),
  loadOnStartup: z.boolean().default(true)
    .describe('Load the selected model in the background when VS Code starts, so the first reply does not wait for it.'),
  idleUnloadMinutes: z.number().min(0).max(10080).default(15)
    .describe('Unload the model after this many idle minutes to free memory; 0 keeps it loaded.'),
  'agent.maxSteps': z.number().int().min(0).max(50).default(6)
    .describe('Most tool steps @nanochat takes for one request (reading files, searching, VS Code\'s tools) before it answers; 0 turns the agent off.'),
  'completions.enabled': z.boolean().default(true)
    .describe('Inline code completions (ghost text) from a code model with fill-in-the-middle tokens, such as Qwen2.5-Coder. Toggle with "Nanochat: Toggle Inline Completions".'),
  'completions.model': z.string().trim().default('')
    .describe('GGUF file (or installed model id) for inline completions; empty uses the chat model when it has fill-in-the-middle tokens.'),
  'completions.maxTokens': z.number().int().min(1).max(512).default(64)
    .describe('Most tokens one inline suggestion may have.'),
  'completions.debounceMs': z.number().int().min(0).max(2000).default(120)
    .describe('Pause in typing, in milliseconds, before a suggestion is computed.'),
  'completions.contextSize': z.number().int().min(512).max(32768).default(2048)
    .describe('Context window of the completion model: the text around the cursor and other open or recently edited files share it.'),
  backend: z.enum(['embedded', 'server']).default('embedded')
    .describe('Where replies come from: `embedded` runs the model in VS Code on this machine; `server` asks the OpenAI-compatible server at `nanochat.server.url`.'),
  'server.url': z.string().trim().default('')
    .refine((v) => v === '' || /^https?:\/\/[^\s/]+/i.test(v), 'an http:// or https:// URL')
    .describe('Base URL of an OpenAI-compatible server (llama-server, vLLM, Ollama, LM Studio), e.g. `http://gpu-box:8080/v1`. Its API key is set with "Nanochat: Set Server API Key".'),
  'server.model': z.string().trim().default('')
    .describe('Model id on the server; empty uses the first model the server lists.'),
  'server.timeoutSeconds': z.number().int().min(1).max(3600).default(60)
    .describe('Longest wait for the server to answer (connect and first byte), in seconds.'),
} as const;

export type SettingKey = keyof typeof settingsShape;

/**
 * Settings that name a file, a folder or (soon) a server: a cloned repository's
 * `.vscode/settings.json` must not set them. They are restricted in untrusted workspaces (VS Code
 * then ignores the workspace's value), and the models folder is per machine.
 */
export const RESTRICTED_SETTINGS: readonly SettingKey[] = ['model', 'modelsFolder', 'backend', 'server.url', 'completions.model'];
export const MACHINE_SCOPED_SETTINGS: readonly SettingKey[] = ['modelsFolder'];
export const settingsSchema = z.object(settingsShape);
export type Settings = z.infer<typeof settingsSchema>;
export const SETTINGS_SECTION = 'nanochat';

export interface SettingProblem { key: SettingKey; message: string }

/** A number setting's range, read from its schema (the manifest, the panel's controls and the protocol derive from it). */
export function numberRange(key: 'temperature' | 'maxTokens' | 'contextSize'): { min: number; max: number } {
  const schema = settingsShape[key].unwrap();
  return { min: schema.minValue ?? -Infinity, max: schema.maxValue ?? Infinity };
}

export function defaultSettings(): Settings {
  return settingsSchema.parse({});
}

/**
 * Validates raw values setting by setting. An invalid value never throws: it is reported with the
 * setting's full name and replaced by its default, and every other setting keeps its value.
 */
export function parseSettings(raw: Partial<Record<string, unknown>>): { settings: Settings; problems: SettingProblem[] } {
  const settings = defaultSettings() as Record<SettingKey, unknown>;
  const problems: SettingProblem[] = [];
  for (const key of Object.keys(settingsShape) as SettingKey[]) {
    const value = raw[key];
    if (value === undefined || value === null) continue;
    const parsed = settingsShape[key].safeParse(value);
    if (parsed.success) {
      settings[key] = parsed.data;
    } else {
      const reason = parsed.error.issues.map((i) => i.message).join('; ');
      problems.push({
        key,
        message: `Setting ${SETTINGS_SECTION}.${key} has an invalid value ${JSON.stringify(value)} (${reason}); using the default ${JSON.stringify(settings[key])}.`,
      });
    }
  }
  return { settings: settings as Settings, problems };
}
