import { Template } from '@huggingface/jinja';
import type { ChatHistoryItem, ChatModelFunctions, ChatWrapper, ChatWrapperGenerateContextStateOptions, ChatWrapperGeneratedContextState, LlamaModel } from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import type { NodeLlamaCpp } from './llama';
import { originalToolSchema } from '../chat/tools';
import type { Settings } from '../settings';
import { RecentMemo } from '../memo';

/**
 * A model's prompt rendered by its own chat template, as transformers and llama-server render it,
 * and tokenized as one text (special tokens parsed). node-llama-cpp's chat wrappers re-create the
 * formats they know piece by piece; measured on the catalog's real templates they differ (Gemma's
 * system prompt separator, a second <|im_start|> for SmolLM2, escaped tool results for Llama 3.2,
 * token boundaries around Qwen's tool list), so the template decides the prompt and the wrapper
 * keeps what it does well: stop triggers, thought segments, and parsing tool calls.
 */
export interface TemplateOptions {
  /** The template's `enable_thinking` (Qwen3); undefined leaves the template's default. */
  enableThinking?: boolean;
}

interface OpenAiMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string;
  tool_calls?: Array<{ type: 'function'; function: { name: string; arguments: unknown } }>;
  name?: string;
}

/** node-llama-cpp's chat history as the OpenAI-style messages chat templates take. */
function historyToMessages(history: readonly ChatHistoryItem[]): OpenAiMessage[] {
  const messages: OpenAiMessage[] = [];
  for (const item of history) {
    if (item.type === 'system') { messages.push({ role: 'system', content: textOf(item.text) }); continue; }
    if (item.type === 'user') { messages.push({ role: 'user', content: item.text }); continue; }
    let text = '';
    let calls: Array<{ name: string; params: unknown; result: unknown }> = [];
    const flush = () => {
      if (!text && calls.length === 0) return;
      messages.push({
        role: 'assistant', content: text,
        ...(calls.length ? { tool_calls: calls.map((c) => ({ type: 'function' as const, function: { name: c.name, arguments: c.params ?? {} } })) } : {}),
      });
      for (const c of calls) messages.push({ role: 'tool', name: c.name, content: typeof c.result === 'string' ? c.result : JSON.stringify(c.result ?? '') });
      text = '';
      calls = [];
    };
    for (const part of item.response) {
      if (typeof part === 'string') {
        if (calls.length) flush();
        text += part;
      } else if (part.type === 'functionCall') {
        calls.push({ name: part.name, params: part.params, result: part.result });
      }
      // Thought segments are never part of the history a template renders: templates drop them.
    }
    flush();
  }
  return messages;
}

function textOf(text: unknown): string {
  if (typeof text === 'string') return text;
  if (Array.isArray(text)) return text.map((t) => (typeof t === 'string' ? t : (t as { value?: string }).value ?? '')).join('');
  return String((text as { value?: string })?.value ?? '');
}

function toolsOf(functions: ChatModelFunctions | undefined): unknown[] | undefined {
  if (!functions || Object.keys(functions).length === 0) return undefined;
  return Object.entries(functions).map(([name, f]) => ({
    type: 'function',
    function: { name, ...(f.description ? { description: f.description } : {}), parameters: originalToolSchema(functions, name) ?? f.params ?? { type: 'object', properties: {} } },
  }));
}

/** The template options a user's settings ask for. */
export function templateOptions(settings: Pick<Settings, 'thinking'>): TemplateOptions {
  return { enableThinking: settings.thinking === 'off' ? false : undefined };
}

/** A parsed chat template and what it can express. */
export class ChatTemplate {
  private readonly template: Template;
  /** Whether the template renders tool definitions and calls itself; without, tools go through node-llama-cpp's own format. */
  readonly hasTools: boolean;
  readonly hasThinking: boolean;
  /** Whether a prompt for this model starts with BOS (the template writes it, or the vocabulary asks for it). */
  readonly startsWithBos: boolean;

  constructor(readonly source: string, private readonly specials: { bos: string; eos: string; addBos?: boolean }) {
    this.template = new Template(source);
    this.startsWithBos = /bos_token/.test(source) || specials.addBos === true;
    this.hasTools = /\btools\b/.test(source) && /tool_calls?\b/.test(source);
    this.hasThinking = /enable_thinking/.test(source);
  }

  /** The prompt text for a history: everything before the reply's first token. */
  render(history: readonly ChatHistoryItem[], functions: ChatModelFunctions | undefined, options: TemplateOptions = {}): string {
    const messages = historyToMessages(history);
    const tools = toolsOf(functions);
    const input = {
      messages,
      ...(tools ? { tools } : {}),
      add_generation_prompt: true,
      bos_token: this.specials.bos,
      eos_token: this.specials.eos,
      ...(options.enableThinking !== undefined && this.hasThinking ? { enable_thinking: options.enableThinking } : {}),
    };
    // A reply renders the same prompt several times (fitting the history, finding the preamble,
    // then node-llama-cpp's own pass): with VS Code's 27 tools each rendering is ~10 ms of the
    // event loop, and comparing the input as JSON ~1 ms.
    return this.recent.get(JSON.stringify(input), () => this.template.render(input));
  }

  private readonly recent = new RecentMemo<string>(4);

  /** Whether a rendered prompt still needs BOS in front: the vocabulary asks for it and the template did not write it. */
  addsBos(text: string): boolean {
    return this.specials.addBos === true && !!this.specials.bos && !text.startsWith(this.specials.bos);
  }

  /** Whether this history (with these tools) is one the template renders faithfully. */
  handles(history: readonly ChatHistoryItem[], functions: ChatModelFunctions | undefined): boolean {
    const usesTools = (functions && Object.keys(functions).length > 0)
      || history.some((h) => h.type === 'model' && h.response.some((p) => typeof p !== 'string' && p.type === 'functionCall'));
    return !usesTools || this.hasTools;
  }
}

/** The model's chat template, if its file has one that parses. */
export function modelChatTemplate(model: LlamaModel): ChatTemplate | undefined {
  const source = (model.fileInfo.metadata as { tokenizer?: { chat_template?: unknown } }).tokenizer?.chat_template;
  if (typeof source !== 'string' || !source.trim()) return undefined;
  try {
    return new ChatTemplate(source, { bos: model.tokens.bosString ?? '', eos: model.tokens.eosString ?? '', addBos: model.tokens.shouldPrependBosToken });
  } catch {
    return undefined;
  }
}

/**
 * The wrapper with its prompt text replaced by the template's rendering, tokenized whole. A history
 * the template cannot render (a tool conversation on a template without tools, a role order it
 * refuses) keeps the wrapper's own rendering, so a reply never fails on the template alone.
 */
export function templateTrueWrapper(inner: ChatWrapper, template: ChatTemplate, lib: Pick<NodeLlamaCpp, 'LlamaText' | 'SpecialTokensText' | 'SpecialToken'>,
  options: () => TemplateOptions = () => ({})): ChatWrapper {
  const generateContextState = (state: ChatWrapperGenerateContextStateOptions): ChatWrapperGeneratedContextState => {
    // The wrapper's own state brings the stop triggers and tool-call settings (0.3 ms with VS Code's 27 tools).
    const own = inner.generateContextState(state);
    if (template.handles(state.chatHistory, state.availableFunctions)) {
      try {
        const text = template.render(state.chatHistory, state.availableFunctions, options());
        // As llama.cpp does for a vocabulary that asks for BOS, when the template does not write it itself.
        const bos = template.addsBos(text) ? [new lib.SpecialToken('BOS')] : [];
        return { ...own, contextText: lib.LlamaText([...bos, new lib.SpecialTokensText(text)]) };
      } catch {
        // A role order the template refuses: the wrapper's own rendering below.
      }
    }
    // node-llama-cpp's ChatML wrapper always starts with BOS; for a model whose BOS is <|im_start|> (SmolLM2) that doubles it.
    const [first, ...rest] = own.contextText.values;
    if (!template.startsWithBos && first instanceof lib.SpecialToken && first.value === 'BOS') return { ...own, contextText: lib.LlamaText(rest) };
    return own;
  };
  return new Proxy(inner, { get: (target, key, receiver) => (key === 'generateContextState' ? generateContextState : Reflect.get(target, key, receiver)) });
}

/**
 * The wrapper nanochat uses for a model: the resolved one, with the prompt written by the model's
 * own template when its file has one. One place for the engine, `npm run prompt` and the tests.
 */
export function nanochatWrapper(resolved: ChatWrapper, model: LlamaModel, lib: Pick<NodeLlamaCpp, 'LlamaText' | 'SpecialTokensText' | 'SpecialToken'>,
  options: () => TemplateOptions): { wrapper: ChatWrapper; template: ChatTemplate | undefined } {
  const template = modelChatTemplate(model);
  return { wrapper: template ? templateTrueWrapper(resolved, template, lib, options) : resolved, template };
}

export function describeTemplate(template: ChatTemplate | undefined): 'with tools' | 'without tools' | 'none' {
  return template ? (template.hasTools ? 'with tools' : 'without tools') : 'none';
}
