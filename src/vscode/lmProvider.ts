import { randomUUID } from 'node:crypto';
import * as vscode from 'vscode';
import type { Conversation } from '../core/chat/engine';
import type { BackendModel } from '../core/chat/backend';
import { conversationFrom, type MessageView, type PartView } from './lmConversation';
import { Emitter } from '../core/events';
import { NoModelError } from '../core/errors';
import { abortOn } from './cancellation';
import { formatBytes } from '../core/modelFiles/ggufCheck';
import type { Services } from './services';

export const VENDOR = 'nanochat';
const NO_MODEL_ID = 'nanochat-no-model';

interface NanochatModelInformation extends vscode.LanguageModelChatInformation {
  /** Set for real models; the placeholder shown without any model has none. */
  readonly backendId?: string;
  readonly isUserSelectable?: boolean;
}

/**
 * Registers the backend's models as a language model provider: they appear in the model picker,
 * any chat participant can use them, and VS Code has a model to attach to @nanochat requests even
 * without Copilot. With no model installed, one placeholder entry answers with what to do.
 */
export function registerLanguageModelProvider(services: Services): vscode.Disposable {
  const { backend } = services;
  const changed = new Emitter<void>();
  const advertised = new Map<string, BackendModel>();
  const provider: vscode.LanguageModelChatProvider<NanochatModelInformation> = {
    onDidChangeLanguageModelChatInformation: changed.event,

    async provideLanguageModelChatInformation() {
      const settings = services.settings.current;
      const models = await backend.listModels();
      for (const m of models) advertised.set(m.id, m);
      if (models.length === 0) {
        return [{
          id: NO_MODEL_ID, name: 'Nanochat (no model yet)', family: 'nanochat', version: '0',
          maxInputTokens: settings.contextSize, maxOutputTokens: settings.maxTokens,
          tooltip: 'Run "Nanochat: Download Model…" or "Nanochat: Use Local GGUF File…"',
          capabilities: { toolCalling: true }, isUserSelectable: true,
        }];
      }
      return models.map((m) => ({
        id: m.id, name: m.name, family: m.family, version: '1', backendId: m.id,
        detail: `${backend.kind === 'server' ? 'server' : 'local'}${m.sizeBytes ? ` · ${formatBytes(m.sizeBytes)}` : ''}`, tooltip: m.path ?? m.name,
        // What the messages may hold once the system prompt, the template's framing and the reply are taken
        // out; provideTokenCount counts each message with its framing, so VS Code's budget is the real one.
        maxInputTokens: m.maxInputTokens, maxOutputTokens: m.maxOutputTokens,
        // Agent mode hides models without tool calling; tools become node-llama-cpp functions.
        capabilities: { toolCalling: true }, isUserSelectable: true,
      }));
    },

    async provideLanguageModelChatResponse(model, messages, options, progress, token) {
      if (!model.backendId) {
        progress.report(new vscode.LanguageModelTextPart(new NoModelError().message + ' Run "Nanochat: Download Model…" or "Nanochat: Use Local GGUF File…".'));
        return;
      }
      if (backend.selectedModel()?.id !== model.backendId) await backend.selectModel(model.backendId);
      const conversation = toConversation(messages);
      const tools = options.tools?.map((t) => ({ name: t.name, description: t.description, parameters: t.inputSchema }));
      const cancel = abortOn(token);
      try {
        // VS Code chose this history within maxInputTokens: nothing is dropped; what cannot fit is refused clearly.
        const reply = backend.reply(conversation, { tools, keepHistory: true }, cancel.signal);
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
      if (!model.backendId) return Math.ceil(value.length / 4);
      const framing = typeof text === 'string' ? 0 : advertised.get(model.backendId)?.messageOverhead ?? 0;
      return (await backend.countTokens(value, model.backendId)).tokens + framing;
    },
  };
  const registration = vscode.lm.registerLanguageModelChatProvider(VENDOR, provider);
  // Without this first event the picker does not offer the model before the first request.
  const fire = () => changed.fire();
  setTimeout(fire, 0);
  const subscriptions = [backend.onDidChangeModels(fire)];
  return { dispose: () => { registration.dispose(); subscriptions.forEach((s) => s.dispose()); changed.dispose(); } };
}

function partText(part: unknown): string {
  if (part instanceof vscode.LanguageModelTextPart) return part.value;
  if (part instanceof vscode.LanguageModelToolResultPart) return part.content.map(partText).join('');
  return '';
}

function messageText(message: vscode.LanguageModelChatRequestMessage): string {
  return message.content.map(partText).join('');
}

/** VS Code's messages as a core conversation (the pairing logic is plain data: ./lmConversation.ts). */
export function toConversation(messages: readonly vscode.LanguageModelChatRequestMessage[]): Conversation {
  return conversationFrom(messages.map((message): MessageView => ({
    role: message.role === vscode.LanguageModelChatMessageRole.Assistant ? 'assistant'
      : message.role === vscode.LanguageModelChatMessageRole.User ? 'user' : 'system',
    parts: message.content.map((part): PartView => {
      if (part instanceof vscode.LanguageModelToolCallPart) return { kind: 'toolCall', callId: part.callId, name: part.name, input: part.input };
      if (part instanceof vscode.LanguageModelToolResultPart) return { kind: 'toolResult', callId: part.callId, text: partText(part) };
      return { kind: 'text', value: partText(part) };
    }),
  })));
}
