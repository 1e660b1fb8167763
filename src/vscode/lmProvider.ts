import { createHash, randomUUID } from 'node:crypto';
import * as vscode from 'vscode';
import type { ChatMessage, Conversation } from '../core/chat/engine';
import type { ToolCall } from '../core/chat/tools';
import { Emitter } from '../core/events';
import { NoModelError, errorMessage } from '../core/errors';
import { formatBytes } from '../core/modelFiles/ggufCheck';
import type { InstalledModel } from '../core/modelFiles/library';
import type { Services } from './services';

export const VENDOR = 'nanochat';
const NO_MODEL_ID = 'nanochat-no-model';

interface NanochatModelInformation extends vscode.LanguageModelChatInformation {
  readonly path?: string;
  readonly isUserSelectable?: boolean;
}

/**
 * Registers the local models as a language model provider: they appear in the model picker, any
 * chat participant can use them, and VS Code has a model to attach to @nanochat requests even
 * without Copilot. With no model installed, one placeholder entry answers with what to do.
 */
export function registerLanguageModelProvider(services: Services): vscode.Disposable {
  const changed = new Emitter<void>();
  const provider: vscode.LanguageModelChatProvider<NanochatModelInformation> = {
    onDidChangeLanguageModelChatInformation: changed.event,

    async provideLanguageModelChatInformation() {
      const settings = services.settings.current;
      await registerConfiguredModel(services);
      const models = knownModels(services);
      if (models.length === 0) {
        return [{
          id: NO_MODEL_ID, name: 'Nanochat (no model yet)', family: 'nanochat', version: '0',
          maxInputTokens: settings.contextSize, maxOutputTokens: settings.maxTokens,
          tooltip: 'Run "Nanochat: Download Model…" or "Nanochat: Use Local GGUF File…"',
          capabilities: { toolCalling: true }, isUserSelectable: true,
        }];
      }
      return models.map((m) => {
        const context = Math.min(settings.contextSize, m.trainContextSize ?? settings.contextSize);
        const output = Math.min(settings.maxTokens, Math.floor(context / 2));
        return {
          id: modelId(m.path), name: m.name, family: m.architecture, version: '1', path: m.path,
          detail: `local · ${formatBytes(m.sizeBytes)}`, tooltip: m.path,
          maxInputTokens: context - output, maxOutputTokens: output,
          // Agent mode hides models without tool calling; tools become node-llama-cpp functions.
          capabilities: { toolCalling: true }, isUserSelectable: true,
        };
      });
    },

    async provideLanguageModelChatResponse(model, messages, options, progress, token) {
      if (!model.path) {
        progress.report(new vscode.LanguageModelTextPart(new NoModelError().message + ' Run "Nanochat: Download Model…" or "Nanochat: Use Local GGUF File…".'));
        return;
      }
      if (services.models.selectedPath !== model.path) {
        await services.settings.update('model', model.path);
        void services.models.load(model.path).catch(() => undefined);
      }
      const conversation = toConversation(messages);
      const tools = options.tools?.map((t) => ({ name: t.name, description: t.description, parameters: t.inputSchema }));
      const controller = new AbortController();
      const cancel = token.onCancellationRequested(() => controller.abort());
      try {
        const reply = services.chat.reply(conversation, { tools }, controller.signal);
        for await (const delta of reply) progress.report(new vscode.LanguageModelTextPart(delta));
        const stats = await reply.stats;
        if (stats.stopReason === 'error') throw new Error(stats.error ?? 'The local model stopped with an error.');
        for (const call of stats.toolCalls ?? []) {
          const input = call.params && typeof call.params === 'object' ? call.params as object : {};
          progress.report(new vscode.LanguageModelToolCallPart(`nanochat-call-${randomUUID()}`, call.name, input));
        }
      } finally {
        cancel.dispose();
      }
    },

    async provideTokenCount(model, text) {
      const value = typeof text === 'string' ? text : messageText(text);
      if (!model.path) return Math.ceil(value.length / 4);
      return (await services.tokens.count(model.path, value)).tokens;
    },
  };
  const registration = vscode.lm.registerLanguageModelChatProvider(VENDOR, provider);
  // Without this first event the picker does not offer the model before the first request.
  const fire = () => changed.fire();
  setTimeout(fire, 0);
  const subscriptions = [
    services.library.onDidChange(fire),
    services.settings.onDidChange(() => { refusedPaths.clear(); fire(); }),
  ];
  return { dispose: () => { registration.dispose(); subscriptions.forEach((s) => s.dispose()); changed.dispose(); } };
}

/** Configured paths already refused, so that VS Code's frequent model queries do not check them again. */
const refusedPaths = new Set<string>();

/** A model path set by hand in the settings joins the library once its header checks out. */
async function registerConfiguredModel(services: Services): Promise<void> {
  const configured = services.settings.current.model;
  if (!configured || services.library.find(configured) || refusedPaths.has(configured)) return;
  try {
    await services.library.add(configured);
  } catch (err) {
    refusedPaths.add(configured);
    services.log.warn(`The configured model is not usable: ${errorMessage(err)}`);
  }
}

/** The library's models, plus the loaded one if it is not in the library yet. */
export function knownModels(services: Services): InstalledModel[] {
  const models = services.library.list();
  const state = services.models.state;
  if (state.kind === 'ready' && !models.some((m) => m.path === state.info.path)) {
    const i = state.info;
    models.unshift({ path: i.path, name: i.name, sizeBytes: i.sizeBytes, architecture: i.architecture, trainContextSize: i.trainContextSize, hasChatTemplate: i.hasChatTemplate, addedAt: Date.now() });
  }
  return models;
}

export function modelId(filePath: string): string {
  return `nanochat-${createHash('sha256').update(filePath).digest('hex').slice(0, 16)}`;
}

function partText(part: unknown): string {
  if (part instanceof vscode.LanguageModelTextPart) return part.value;
  if (part instanceof vscode.LanguageModelToolResultPart) return part.content.map(partText).join('');
  return '';
}

function messageText(message: vscode.LanguageModelChatRequestMessage): string {
  return message.content.map(partText).join('');
}

/**
 * VS Code's messages as a core conversation: roles mapped, runs of one role merged, tool calls and
 * their results paired (a result comes back in the next user message, under the call's id).
 */
export function toConversation(messages: readonly vscode.LanguageModelChatRequestMessage[]): Conversation {
  const out: ChatMessage[] = [];
  const calls = new Map<string, ToolCall>();
  for (const message of messages) {
    const role: ChatMessage['role'] = message.role === vscode.LanguageModelChatMessageRole.Assistant ? 'assistant'
      : message.role === vscode.LanguageModelChatMessageRole.User ? 'user' : 'system';
    let content = '';
    const toolCalls: ToolCall[] = [];
    for (const part of message.content) {
      if (part instanceof vscode.LanguageModelToolCallPart && role === 'assistant') {
        const call: ToolCall = { id: part.callId, name: part.name, params: part.input };
        calls.set(part.callId, call);
        toolCalls.push(call);
      } else if (part instanceof vscode.LanguageModelToolResultPart && calls.has(part.callId)) {
        calls.get(part.callId)!.result = partText(part);
      } else {
        content += partText(part);
      }
    }
    const last = out.at(-1);
    if (!content && toolCalls.length === 0) continue;
    if (last && last.role === role) {
      last.content = [last.content, content].filter(Boolean).join('\n\n');
      if (toolCalls.length) last.toolCalls = [...(last.toolCalls ?? []), ...toolCalls];
    } else {
      out.push({ role, content, ...(toolCalls.length ? { toolCalls } : {}) });
    }
  }
  const last = out.at(-1);
  const awaitsContinuation = last?.role === 'assistant' && !!last.toolCalls?.length && last.toolCalls.every((c) => c.result !== undefined);
  if (last?.role !== 'user' && !awaitsContinuation) out.push({ role: 'user', content: 'Continue.' });
  const first = out.find((m) => m.role === 'user')?.content ?? '';
  return { id: `lm:${createHash('sha256').update(first).digest('hex').slice(0, 16)}`, messages: out };
}
