import { Template } from '@huggingface/jinja';
import type { OpenAiConversation } from '../../src/core/chat/prompt';

/**
 * A model's own chat template rendered as transformers' apply_chat_template renders it, with
 * @huggingface/jinja: the conversation in OpenAI's chat format (tool-call arguments as objects, as HF
 * templates expect), the tools, add_generation_prompt, and the vocabulary's bos/eos strings. The
 * reference the prompts nanochat evaluates are compared against.
 */
export function renderReference(template: string, conversation: OpenAiConversation, tokens: { bos: string; eos: string }, extra: Record<string, unknown> = {}): string {
  const messages = conversation.messages.map((m) => m.role === 'assistant' && m.tool_calls
    ? { ...m, tool_calls: m.tool_calls.map((c) => ({ ...c, function: { ...c.function, arguments: typeof c.function.arguments === 'string' ? JSON.parse(c.function.arguments) : c.function.arguments } })) }
    : m);
  return new Template(template).render({
    messages, ...(conversation.tools ? { tools: conversation.tools } : {}), add_generation_prompt: true,
    bos_token: tokens.bos, eos_token: tokens.eos, ...extra,
  });
}

/** The conversation every catalog model's prompt is checked with: a system prompt, three user turns, a tool call and its result. */
export const REFERENCE_CONVERSATION: OpenAiConversation = {
  messages: [
    { role: 'system', content: 'You are a concise assistant for a code editor.' },
    { role: 'user', content: 'Hello! Who are you?' },
    { role: 'assistant', content: 'I am a local model running in your editor.' },
    { role: 'user', content: "What's the weather in Paris?" },
    { role: 'assistant', content: '', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: '{"temperature":21,"sky":"sunny"}' },
    { role: 'assistant', content: 'It is sunny in Paris, 21 °C.' },
    { role: 'user', content: 'Thanks. And in 東京? 🌧' },
  ],
  tools: [{
    type: 'function',
    function: {
      name: 'get_weather', description: 'Current weather in a city',
      parameters: { type: 'object', properties: { city: { type: 'string', description: 'The city' } }, required: ['city'] },
    },
  }],
};

/** The same without tools, for templates that have no tool syntax. */
export const REFERENCE_CONVERSATION_NO_TOOLS: OpenAiConversation = {
  messages: [
    { role: 'system', content: 'You are a concise assistant for a code editor.' },
    { role: 'user', content: 'Hello! Who are you?' },
    { role: 'assistant', content: 'I am a local model running in your editor.' },
    { role: 'user', content: 'What is 2 + 2?' },
    { role: 'assistant', content: '4.' },
    { role: 'user', content: 'Thanks. And in 東京? 🌧' },
  ],
};
