import { randomUUID } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { KeyValueStore } from '../modelFiles/library';
import { silentLogger, type Logger } from '../log';
import { NanochatError, errorMessage } from '../errors';
import { panelMessageSchema, type ConversationSummary, type PanelMessage } from '../../protocol/panel';

export interface StoredConversation {
  id: string;
  title: string;
  createdAt: number;
  updatedAt: number;
  messages: PanelMessage[];
}

/** Where earlier versions kept every conversation: one value in the extension's globalState. */
export const LEGACY_KEY = 'nanochat.conversations';
const LEGACY_ACTIVE_KEY = 'nanochat.activeConversation';
const DEFAULT_TITLE = 'New chat';
const MAX_CONVERSATIONS = 200;
/** Conversations kept in memory besides the index (the active one and the last few opened). */
const CACHED_CONVERSATIONS = 8;
const INDEX_FILE = 'index.json';

const safeId = z.string().regex(/^[A-Za-z0-9_-]{1,100}$/);
const summarySchema = z.object({ id: safeId, title: z.string().max(200), createdAt: z.number(), updatedAt: z.number() });
const indexSchema = z.object({ version: z.literal(1), active: safeId.optional(), conversations: z.array(summarySchema) });
const conversationSchema = summarySchema.extend({ messages: z.array(panelMessageSchema) });
type Summary = z.infer<typeof summarySchema>;
type Index = z.infer<typeof indexSchema>;

/**
 * The chat panel's conversations, one JSON file each in `dir` (the extension's global storage) with
 * an index of their titles, so they survive window reloads and restarts; the oldest beyond 200 are
 * dropped. A reply's save writes its own conversation (and the small index), asynchronously.
 *
 * Kept before in one globalState value, every save sent every conversation through VS Code's storage,
 * serialized on the extension host's thread (220–427 ms of its event loop for 200 conversations of 20
 * messages, 11 MB, in the real host) and again in the window that stores it. That value is moved
 * into files on first use and then cleared. A file that cannot be read is set aside (renamed
 * `*.unreadable-<time>`), never deleted; an unreadable index is rebuilt from the files.
 */
export class ConversationStore {
  /** Writes run one after another: each reads what the previous one stored (replies end concurrently). */
  private writes: Promise<unknown> = Promise.resolve();
  private index: Promise<Index> | undefined;
  private readonly cache = new Map<string, StoredConversation>();
  /** Changed conversations whose file could not be written yet (see persist). */
  private readonly unsaved = new Map<string, StoredConversation>();

  constructor(private readonly dir: string, private readonly legacy?: KeyValueStore, private readonly log: Logger = silentLogger) {}

  async list(): Promise<ConversationSummary[]> {
    return (await this.loaded()).conversations.map(({ id, title, updatedAt }) => ({ id, title, updatedAt }));
  }

  async get(id: string): Promise<StoredConversation | undefined> {
    const index = await this.loaded();
    if (!index.conversations.some((c) => c.id === id)) return undefined;
    return this.read(id);
  }

  /** The conversation shown last, or a new one when there is none. */
  async active(): Promise<StoredConversation> {
    const index = await this.loaded();
    for (const id of [index.active, ...index.conversations.map((c) => c.id)]) {
      const conversation = id ? await this.get(id) : undefined;
      if (conversation) return conversation;
    }
    return this.create();
  }

  async setActive(id: string): Promise<void> {
    await this.exclusive(async () => {
      const index = await this.loaded();
      if (index.active === id || !index.conversations.some((c) => c.id === id)) return;
      index.active = id;
      await this.writeIndex(index);
    });
  }

  async create(): Promise<StoredConversation> {
    const now = Date.now();
    const conversation: StoredConversation = { id: randomUUID(), title: DEFAULT_TITLE, createdAt: now, updatedAt: now, messages: [] };
    await this.exclusive(async () => {
      const index = await this.loaded();
      index.conversations.unshift(summaryOf(conversation));
      index.active = conversation.id;
      const dropped = index.conversations.splice(MAX_CONVERSATIONS);
      await this.persist(index, conversation);
      for (const old of dropped) await this.remove(old.id);
    });
    return conversation;
  }

  async rename(id: string, title: string): Promise<void> {
    await this.change(id, (c) => { c.title = title.trim().slice(0, 200) || DEFAULT_TITLE; });
  }

  async delete(id: string): Promise<void> {
    await this.exclusive(async () => {
      const index = await this.loaded();
      const at = index.conversations.findIndex((c) => c.id === id);
      if (at < 0) return;
      index.conversations.splice(at, 1);
      if (index.active === id) index.active = undefined;
      await this.writeIndex(index);
      await this.remove(id);
    });
  }

  /** Replaces the messages; a still-untitled conversation takes its title from the first message. */
  async setMessages(id: string, messages: PanelMessage[]): Promise<StoredConversation | undefined> {
    return this.updateMessages(id, () => messages);
  }

  /**
   * Replaces the messages with what `update` makes of the stored ones, in turn with every other write
   * (so two changes at once both land); `update` returning undefined leaves them as they are. Returns
   * the changed conversation, or undefined when there is none or nothing changed.
   */
  async updateMessages(id: string, update: (current: readonly PanelMessage[]) => PanelMessage[] | undefined): Promise<StoredConversation | undefined> {
    return this.change(id, (c) => {
      const messages = update(c.messages);
      if (!messages) return false;
      c.messages = messages;
      const first = messages.find((m) => m.role === 'user');
      if (c.title === DEFAULT_TITLE && first) c.title = titleFrom(first.content);
      return true;
    });
  }

  private change(id: string, edit: (c: StoredConversation) => boolean | void): Promise<StoredConversation | undefined> {
    return this.exclusive(async () => {
      const index = await this.loaded();
      const at = index.conversations.findIndex((c) => c.id === id);
      const current = at < 0 ? undefined : await this.read(id);
      if (!current) return undefined;
      const conversation: StoredConversation = { ...current, messages: [...current.messages] };
      if (edit(conversation) === false) return undefined;
      conversation.updatedAt = Date.now();
      index.conversations.splice(at, 1);
      index.conversations.unshift(summaryOf(conversation));
      await this.persist(index, conversation);
      return conversation;
    });
  }

  private exclusive<T>(write: () => Promise<T>): Promise<T> {
    const next = this.writes.then(write, write);
    this.writes = next.catch(() => undefined);
    return next;
  }

  // ---- files -------------------------------------------------------------------------------

  private loaded(): Promise<Index> {
    this.index ??= this.load().catch((err) => {
      this.index = undefined; // try again next time (e.g. a disk that was full)
      throw err;
    });
    return this.index;
  }

  private async load(): Promise<Index> {
    await fsp.mkdir(this.dir, { recursive: true }).catch((err) => { throw this.cannot('keep', err); });
    const index = await this.readIndex();
    // Every conversation file the index does not name is listed (again): all of them when the index is
    // new or was unreadable, else one another window wrote the index without.
    const named = new Set(index.conversations.map((c) => c.id));
    const unnamed = (await fsp.readdir(this.dir)).filter((n) => n.endsWith('.json') && n !== INDEX_FILE && !named.has(n.slice(0, -'.json'.length)));
    for (const name of unnamed) {
      const conversation = await this.read(name.slice(0, -'.json'.length));
      if (conversation) index.conversations.push(summaryOf(conversation));
    }
    if (unnamed.length) {
      index.conversations.sort((a, b) => b.updatedAt - a.updatedAt);
      await this.writeIndex(index);
    }
    const legacy = this.legacy?.get<unknown>(LEGACY_KEY);
    return Array.isArray(legacy) && legacy.length ? this.migrate(index, legacy) : index;
  }

  /** The index file's contents; an empty index when there is none or it cannot be read (then set aside). */
  private async readIndex(): Promise<Index> {
    const file = path.join(this.dir, INDEX_FILE);
    let text: string;
    try {
      text = await fsp.readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, conversations: [] };
      throw err;
    }
    const parsed = parseJson(text, indexSchema);
    if (parsed) return parsed;
    this.log.warn(`The chat panel's conversation index (${file}) could not be read; it was set aside and rebuilt from the conversations' files.`);
    await setAside(file);
    return { version: 1, conversations: [] };
  }

  /** Moves the conversations kept in globalState by earlier versions into files, then clears them there. */
  private async migrate(index: Index, legacy: unknown[]): Promise<Index> {
    const known = new Set(index.conversations.map((c) => c.id));
    let moved = 0;
    const left: unknown[] = [];
    for (const item of legacy) {
      const conversation = conversationSchema.safeParse(item);
      if (!conversation.success) {
        this.log.warn(`A conversation kept by an earlier version could not be read and was left in globalState (${conversation.error.issues[0]?.message}).`);
        left.push(item);
        continue;
      }
      if (known.has(conversation.data.id)) continue;
      await this.writeConversation(conversation.data);
      index.conversations.push(summaryOf(conversation.data));
      known.add(conversation.data.id);
      moved++;
    }
    index.conversations.sort((a, b) => b.updatedAt - a.updatedAt);
    const active = this.legacy?.get<string>(LEGACY_ACTIVE_KEY);
    if (!index.active && active && known.has(active)) index.active = active;
    await this.writeIndex(index);
    await this.legacy?.update(LEGACY_KEY, left.length ? left : undefined);
    await this.legacy?.update(LEGACY_ACTIVE_KEY, undefined);
    this.log.info(`Moved ${moved} chat panel conversations from extension state into ${this.dir}.`);
    return index;
  }

  private async read(id: string): Promise<StoredConversation | undefined> {
    const cached = this.unsaved.get(id) ?? this.cache.get(id);
    if (cached) return this.remember(cached);
    if (!safeId.safeParse(id).success) return undefined;
    const file = this.file(id);
    let text: string;
    try {
      text = await fsp.readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn(`Could not read the conversation ${file}: ${errorMessage(err)}`);
      return undefined;
    }
    const conversation = parseJson(text, conversationSchema);
    if (!conversation || conversation.id !== id) {
      this.log.warn(`The conversation ${file} could not be read; it was set aside.`);
      await setAside(file);
      return undefined;
    }
    return this.remember(conversation);
  }

  private remember(conversation: StoredConversation): StoredConversation {
    this.cache.delete(conversation.id);
    this.cache.set(conversation.id, conversation);
    for (const id of this.cache.keys()) {
      if (this.cache.size <= CACHED_CONVERSATIONS) break;
      this.cache.delete(id);
    }
    return conversation;
  }

  /**
   * Writes a changed conversation, any earlier one whose write failed, and the index. The change is
   * made in memory first and kept there (never dropped from the cache) until its file is written: a
   * full disk loses nothing while VS Code runs, and the next change that can be written saves it too.
   */
  private async persist(index: Index, conversation: StoredConversation): Promise<void> {
    this.remember(conversation);
    this.unsaved.set(conversation.id, conversation);
    for (const pending of [...this.unsaved.values()]) {
      await this.writeConversation(pending);
      if (this.unsaved.get(pending.id) === pending) this.unsaved.delete(pending.id);
    }
    await this.writeIndex(index);
  }

  private async writeConversation(conversation: StoredConversation): Promise<void> {
    await writeAtomically(this.file(conversation.id), JSON.stringify(conversation)).catch((err) => { throw this.cannot('save', err); });
  }

  private async writeIndex(index: Index): Promise<void> {
    await writeAtomically(path.join(this.dir, INDEX_FILE), JSON.stringify(index)).catch((err) => { throw this.cannot('save', err); });
  }

  private cannot(what: 'keep' | 'save', err: unknown): NanochatError {
    const kept = what === 'save' ? ' They are kept while VS Code runs and saved with the next change that can be.' : '';
    return new NanochatError(`Could not ${what} the chat panel's conversations in ${this.dir}: ${errorMessage(err)}.${kept}`);
  }

  private async remove(id: string): Promise<void> {
    this.cache.delete(id);
    this.unsaved.delete(id);
    await fsp.rm(this.file(id), { force: true });
  }

  private file(id: string): string {
    return path.join(this.dir, `${id}.json`);
  }
}

function summaryOf(c: StoredConversation): Summary {
  return { id: c.id, title: c.title, createdAt: c.createdAt, updatedAt: c.updatedAt };
}

function parseJson<T>(text: string, schema: z.ZodType<T>): T | undefined {
  try {
    const parsed = schema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Written to a temporary file and renamed over the old one: a crash leaves the old or the new, never half. */
async function writeAtomically(file: string, text: string): Promise<void> {
  const temporary = `${file}.${process.pid}-${randomUUID().slice(0, 8)}.tmp`;
  try {
    await fsp.writeFile(temporary, text, 'utf8');
    await fsp.rename(temporary, file);
  } catch (err) {
    await fsp.rm(temporary, { force: true }).catch(() => undefined);
    throw err;
  }
}

async function setAside(file: string): Promise<void> {
  await fsp.rename(file, `${file}.unreadable-${Date.now()}`).catch(() => undefined);
}

function titleFrom(text: string): string {
  const line = text.trim().split('\n')[0].replace(/\s+/g, ' ');
  return line.length > 48 ? `${line.slice(0, 47)}…` : line || DEFAULT_TITLE;
}
