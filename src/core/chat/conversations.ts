import { randomUUID } from 'node:crypto';
import type { KeyValueStore } from '../modelFiles/library';
import type { ConversationSummary, PanelMessage } from '../../protocol/panel';

export interface StoredConversation {
  id: string;
  title: string;
  createdAt: number;
  updatedAt: number;
  messages: PanelMessage[];
}

const KEY = 'nanochat.conversations';
const ACTIVE_KEY = 'nanochat.activeConversation';
const DEFAULT_TITLE = 'New chat';
const MAX_CONVERSATIONS = 200;

/**
 * The chat panel's conversations, persisted in extension storage so they survive window reloads
 * and restarts. Oldest conversations beyond 200 are dropped.
 */
export class ConversationStore {
  /** Writes run one after another: each reads what the previous one stored (replies end concurrently). */
  private writes: Promise<unknown> = Promise.resolve();

  constructor(private readonly store: KeyValueStore) {}

  list(): ConversationSummary[] {
    return this.all().map(({ id, title, updatedAt }) => ({ id, title, updatedAt }));
  }

  get(id: string): StoredConversation | undefined {
    return this.all().find((c) => c.id === id);
  }

  /** The conversation shown last, or a new one when there is none. */
  async active(): Promise<StoredConversation> {
    const id = this.store.get<string>(ACTIVE_KEY);
    const existing = (id && this.get(id)) || this.all()[0];
    if (existing) return existing;
    return this.create();
  }

  async setActive(id: string): Promise<void> {
    await this.store.update(ACTIVE_KEY, id);
  }

  async create(): Promise<StoredConversation> {
    const now = Date.now();
    const conversation: StoredConversation = { id: randomUUID(), title: DEFAULT_TITLE, createdAt: now, updatedAt: now, messages: [] };
    await this.exclusive(() => this.save([conversation, ...this.all()].slice(0, MAX_CONVERSATIONS)));
    await this.setActive(conversation.id);
    return conversation;
  }

  async rename(id: string, title: string): Promise<void> {
    await this.change(id, (c) => { c.title = title.trim().slice(0, 200) || DEFAULT_TITLE; });
  }

  async delete(id: string): Promise<void> {
    await this.exclusive(() => this.save(this.all().filter((c) => c.id !== id)));
  }

  /** Replaces the messages; a still-untitled conversation takes its title from the first message. */
  async setMessages(id: string, messages: PanelMessage[]): Promise<StoredConversation | undefined> {
    return this.change(id, (c) => {
      c.messages = messages;
      const first = messages.find((m) => m.role === 'user');
      if (c.title === DEFAULT_TITLE && first) c.title = titleFrom(first.content);
    });
  }

  private change(id: string, edit: (c: StoredConversation) => void): Promise<StoredConversation | undefined> {
    return this.exclusive(async () => {
      const all = this.all();
      const conversation = all.find((c) => c.id === id);
      if (!conversation) return undefined;
      edit(conversation);
      conversation.updatedAt = Date.now();
      await this.save([conversation, ...all.filter((c) => c !== conversation)]);
      return conversation;
    });
  }

  private exclusive<T>(write: () => Promise<T>): Promise<T> {
    const next = this.writes.then(write, write);
    this.writes = next.catch(() => undefined);
    return next;
  }

  private all(): StoredConversation[] {
    return [...(this.store.get<StoredConversation[]>(KEY) ?? [])];
  }

  private async save(conversations: StoredConversation[]): Promise<void> {
    await this.store.update(KEY, conversations);
  }
}

function titleFrom(text: string): string {
  const line = text.trim().split('\n')[0].replace(/\s+/g, ' ');
  return line.length > 48 ? `${line.slice(0, 47)}…` : line || DEFAULT_TITLE;
}
