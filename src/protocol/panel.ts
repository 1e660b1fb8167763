import { z } from 'zod';
import { STOP_REASONS } from '../core/chat/stopReasons';
import { settingsShape } from '../core/settings';

/**
 * The chat panel's message protocol: every message between the extension host and the webview is
 * validated against these schemas on arrival; anything else is dropped (and logged).
 */
const id = z.string().min(1).max(100);
const text = z.string().max(10_000_000);

export const replyStatsSchema = z.object({
  model: z.string(),
  promptTokens: z.number(),
  completionTokens: z.number(),
  thoughtTokens: z.number().optional(),
  timeToFirstTokenMs: z.number().optional(),
  tokensPerSecond: z.number(),
  totalMs: z.number(),
  stopReason: z.enum(STOP_REASONS),
  error: z.string().optional(),
});

export const panelMessageSchema = z.object({
  role: z.enum(['user', 'assistant']),
  content: text,
  /** A thinking model's thoughts before its answer: shown collapsed, never sent back to the model. */
  thoughts: text.optional(),
  stats: replyStatsSchema.optional(),
  createdAt: z.number(),
});

export const conversationSummarySchema = z.object({ id, title: z.string().max(200), updatedAt: z.number() });

export const modelViewSchema = z.object({
  kind: z.enum(['none', 'loading', 'ready', 'error', 'unloaded', 'downloading']),
  name: z.string().optional(),
  progress: z.number().min(0).max(1).optional(),
  error: z.string().optional(),
  contextSize: z.number().optional(),
});

/** The settings the panel edits, with the ranges of the settings schema itself. */
export const panelSettingsSchema = z.object({
  temperature: settingsShape.temperature.unwrap(),
  maxTokens: settingsShape.maxTokens.unwrap(),
  systemPrompt: settingsShape.systemPrompt.unwrap(),
});

/** Host → webview. */
export const toWebviewSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('state'),
    conversations: z.array(conversationSummarySchema),
    activeId: id,
    messages: z.array(panelMessageSchema),
    generating: z.boolean(),
    contextUsed: z.number(),
  }),
  z.object({ type: z.literal('model'), model: modelViewSchema }),
  z.object({ type: z.literal('settings'), settings: panelSettingsSchema }),
  z.object({ type: z.literal('delta'), conversationId: id, text }),
  z.object({ type: z.literal('thought'), conversationId: id, text }),
  z.object({ type: z.literal('done'), conversationId: id, stats: replyStatsSchema, contextUsed: z.number() }),
  z.object({ type: z.literal('error'), message: z.string().max(2000) }),
]);

/** Webview → host. */
export const fromWebviewSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready') }),
  z.object({ type: z.literal('send'), conversationId: id, text: text.min(1) }),
  z.object({ type: z.literal('stop'), conversationId: id }),
  z.object({ type: z.literal('regenerate'), conversationId: id }),
  z.object({ type: z.literal('edit'), conversationId: id, index: z.number().int().min(0), text: text.min(1) }),
  z.object({ type: z.literal('newConversation') }),
  z.object({ type: z.literal('switchConversation'), conversationId: id }),
  z.object({ type: z.literal('renameConversation'), conversationId: id, title: z.string().trim().min(1).max(200) }),
  z.object({ type: z.literal('deleteConversation'), conversationId: id }),
  z.object({ type: z.literal('setSetting'), key: panelSettingsSchema.keyof(), value: z.union([z.number(), z.string()]) })
    .refine((m) => panelSettingsSchema.shape[m.key].safeParse(m.value).success, { message: 'value out of the setting\'s range' }),
  z.object({ type: z.literal('code'), action: z.enum(['copy', 'insert', 'open']), code: text, language: z.string().max(50) }),
  z.object({ type: z.literal('command'), command: z.enum(['download', 'useLocal', 'select', 'retry', 'logs']) }),
]);

export type ToWebview = z.infer<typeof toWebviewSchema>;
export type FromWebview = z.infer<typeof fromWebviewSchema>;
export type PanelMessage = z.infer<typeof panelMessageSchema>;
export type ModelView = z.infer<typeof modelViewSchema>;
export type PanelSettings = z.infer<typeof panelSettingsSchema>;
export type ConversationSummary = z.infer<typeof conversationSummarySchema>;
