import './jitless';
import '@vscode/codicons/dist/codicon.css';
import './style.css';
import { fromWebviewSchema, panelSettingsSchema, toWebviewSchema, type FromWebview, type ModelView, type PanelMessage, type ToWebview } from '../src/protocol/panel';
import { MarkdownStream, renderMarkdown, warmUpHighlighting } from './markdown';
import { STOP_REASON_LABELS } from '../src/core/chat/stopReasons';

declare function acquireVsCodeApi(): { postMessage(message: unknown): void; getState(): unknown; setState(state: unknown): void };

const vscode = acquireVsCodeApi();
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const ui = {
  conversations: $<HTMLUListElement>('conversations'),
  newChat: $<HTMLButtonElement>('new-chat'),
  modelState: $('model-state'),
  contextFill: $('context-fill'),
  contextLabel: $('context-label'),
  toggleSettings: $<HTMLButtonElement>('toggle-settings'),
  settings: $('settings'),
  temperature: $<HTMLInputElement>('set-temperature'),
  maxTokens: $<HTMLInputElement>('set-max-tokens'),
  systemPrompt: $<HTMLTextAreaElement>('set-system-prompt'),
  banner: $('banner'),
  messages: $('messages'),
  composer: $<HTMLFormElement>('composer'),
  input: $<HTMLTextAreaElement>('input'),
  send: $<HTMLButtonElement>('send'),
  stop: $<HTMLButtonElement>('stop'),
};

interface View {
  activeId: string;
  messages: PanelMessage[];
  generating: boolean;
  streamText: string;
  /** A thinking model's thoughts of the reply being streamed. */
  streamThoughts: string;
  contextUsed: number;
  model: ModelView;
}
const view: View = { activeId: '', messages: [], generating: false, streamText: '', streamThoughts: '', contextUsed: 0, model: { kind: 'none' } };
let streamElement: HTMLElement | undefined;
/** The streaming reply's body: what has settled is rendered once (see MarkdownStream). */
let stream: MarkdownStream | undefined;
let renderScheduled = false;

function post(message: FromWebview): void {
  vscode.postMessage(fromWebviewSchema.parse(message));
}

window.addEventListener('message', (event: MessageEvent) => {
  const parsed = toWebviewSchema.safeParse(event.data);
  if (!parsed.success) {
    console.warn('nanochat: dropped a malformed message from the extension', parsed.error.issues[0]?.message);
    return;
  }
  handle(parsed.data);
});

function handle(message: ToWebview): void {
  switch (message.type) {
    case 'state':
      view.activeId = message.activeId;
      view.messages = message.messages;
      view.generating = message.generating;
      view.contextUsed = message.contextUsed;
      if (!message.generating) { view.streamText = ''; view.streamThoughts = ''; }
      renderConversations(message.conversations);
      renderMessages();
      break;
    case 'model':
      view.model = message.model;
      renderModel();
      break;
    case 'settings':
      if (document.activeElement !== ui.temperature) ui.temperature.value = String(message.settings.temperature);
      if (document.activeElement !== ui.maxTokens) ui.maxTokens.value = String(message.settings.maxTokens);
      if (document.activeElement !== ui.systemPrompt) ui.systemPrompt.value = message.settings.systemPrompt;
      break;
    case 'delta':
      if (message.conversationId !== view.activeId) return;
      view.streamText += message.text;
      scheduleStreamRender();
      break;
    case 'thought':
      if (message.conversationId !== view.activeId) return;
      view.streamThoughts += message.text;
      scheduleStreamRender();
      break;
    case 'done':
      if (message.conversationId !== view.activeId) return;
      view.contextUsed = message.contextUsed;
      break;
    case 'error':
      showBanner('error', message.message, [['Show logs', 'logs']]);
      break;
  }
}

// ---- rendering ---------------------------------------------------------------------------

function renderConversations(list: { id: string; title: string }[]): void {
  ui.conversations.replaceChildren(...list.map((c) => {
    const item = document.createElement('li');
    item.className = `conversation${c.id === view.activeId ? ' active' : ''}`;
    item.setAttribute('role', 'option');
    item.setAttribute('aria-selected', String(c.id === view.activeId));
    item.dataset.id = c.id;
    const title = document.createElement('span');
    title.className = 'title';
    title.textContent = c.title;
    title.title = 'Double-click to rename';
    title.addEventListener('click', () => { if (c.id !== view.activeId) post({ type: 'switchConversation', conversationId: c.id }); });
    title.addEventListener('dblclick', () => startRename(item, title, c.id));
    const rename = iconButton('edit', 'Rename', () => startRename(item, title, c.id));
    const remove = iconButton('trash', 'Delete', () => confirmDelete(remove, c.id));
    item.append(title, rename, remove);
    return item;
  }));
}

function startRename(item: HTMLElement, title: HTMLElement, id: string): void {
  const input = document.createElement('input');
  input.className = 'rename';
  input.value = title.textContent ?? '';
  input.setAttribute('aria-label', 'Conversation title');
  title.replaceWith(input);
  input.focus();
  input.select();
  let done = false;
  const finish = (commit: boolean) => {
    if (done) return;
    done = true;
    const value = input.value.trim();
    if (commit && value && value !== title.textContent) post({ type: 'renameConversation', conversationId: id, title: value });
    input.replaceWith(title);
    if (commit && value) title.textContent = value;
    void item;
  };
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') { e.preventDefault(); finish(true); }
    if (e.key === 'Escape') { e.preventDefault(); e.stopPropagation(); finish(false); }
  });
  input.addEventListener('blur', () => finish(true));
}

/** Webviews cannot show confirm(): the first click arms the button, a second within 3 s deletes. */
function confirmDelete(button: HTMLButtonElement, id: string): void {
  if (button.dataset.armed === 'true') {
    post({ type: 'deleteConversation', conversationId: id });
    return;
  }
  button.dataset.armed = 'true';
  button.classList.add('armed');
  button.title = 'Click again to delete';
  setTimeout(() => { button.dataset.armed = 'false'; button.classList.remove('armed'); button.title = 'Delete'; }, 3000);
}

/**
 * The elements of the messages shown, by everything they show: a state update (a reply ending, a
 * message sent) keeps the element of each message it does not change, with its rendering (and its
 * open Thinking block, or an edit in progress), instead of building every message again.
 */
let shown = new Map<string, HTMLElement>();

function renderMessages(): void {
  const previous = shown;
  shown = new Map();
  const items = view.messages.map((m, index) => {
    const key = JSON.stringify([index === view.messages.length - 1, index, m]);
    const element = previous.get(key) ?? messageElement(m, index);
    previous.delete(key);
    shown.set(key, element);
    return element;
  });
  streamElement = undefined;
  stream = undefined;
  if (view.generating) {
    streamElement = messageElement({ role: 'assistant', content: '', thoughts: view.streamThoughts || undefined, createdAt: Date.now() }, -1);
    streamElement.classList.add('streaming');
    const body = streamElement.querySelector<HTMLElement>('.body')!;
    stream = new MarkdownStream(body);
    showStreamText(body);
    items.push(streamElement);
  }
  if (items.length === 0) {
    const empty = document.createElement('div');
    empty.className = 'empty muted';
    empty.textContent = 'Ask anything. The model runs on this machine: nothing you type leaves it.';
    items.push(empty);
  }
  // Only what changed is moved: taking kept elements out and back in would lay all of them out again.
  const keep = new Set<Element>(items);
  for (const child of [...ui.messages.children]) if (!keep.has(child)) child.remove();
  items.forEach((item, i) => { if (ui.messages.children[i] !== item) ui.messages.insertBefore(item, ui.messages.children[i] ?? null); });
  ui.messages.classList.toggle('generating', view.generating);
  ui.send.hidden = view.generating;
  ui.stop.hidden = !view.generating;
  renderContext();
  scrollToEnd();
}

function messageElement(message: PanelMessage, index: number): HTMLElement {
  const element = document.createElement('article');
  element.className = `message ${message.role}`;
  element.setAttribute('aria-label', message.role === 'user' ? 'You' : 'nanochat');
  const body = document.createElement('div');
  body.className = 'body';
  if (message.role === 'user') body.textContent = message.content;
  else body.innerHTML = renderMarkdown(message.content);
  if (message.thoughts) element.append(thinkingElement(message.thoughts, index < 0 && !view.streamText, message.stats?.thoughtTokens));
  element.append(body);
  if (index < 0) return element;
  const footer = document.createElement('div');
  footer.className = 'footer';
  if (message.stats) {
    const s = message.stats;
    const stats = document.createElement('span');
    stats.className = 'stats muted';
    stats.textContent = [`${s.completionTokens} tokens`, s.thoughtTokens ? `${s.thoughtTokens} thinking` : '', s.timeToFirstTokenMs !== undefined ? `first token ${s.timeToFirstTokenMs} ms` : '',
      `${s.tokensPerSecond.toFixed(1)} tok/s`, s.model, STOP_REASON_LABELS[s.stopReason]].filter(Boolean).join(' · ');
    footer.append(stats);
    if (s.error) {
      const error = document.createElement('div');
      error.className = 'error-text';
      error.textContent = s.error;
      element.append(error);
    }
  }
  // Hidden while a reply is generated (#messages.generating), so the element does not depend on it.
  if (message.role === 'user') footer.append(iconButton('edit', 'Edit and resend', () => editMessage(element, body, index, message.content)));
  if (message.role === 'assistant' && index === view.messages.length - 1) footer.append(iconButton('refresh', 'Regenerate', () => post({ type: 'regenerate', conversationId: view.activeId })));
  // A message left without a reply (the model or the server failed): send it again.
  if (message.role === 'user' && index === view.messages.length - 1) footer.append(iconButton('refresh', 'Retry', () => post({ type: 'regenerate', conversationId: view.activeId })));
  element.append(footer);
  return element;
}

function editMessage(element: HTMLElement, body: HTMLElement, index: number, content: string): void {
  const editor = document.createElement('textarea');
  editor.className = 'edit';
  editor.value = content;
  editor.rows = Math.min(12, content.split('\n').length + 1);
  editor.setAttribute('aria-label', 'Edit message');
  body.replaceWith(editor);
  editor.focus();
  editor.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      const text = editor.value.trim();
      if (text) post({ type: 'edit', conversationId: view.activeId, index, text });
    } else if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      editor.replaceWith(body);
    }
  });
  void element;
}

/**
 * A thinking model's thoughts, collapsed under "Thinking" (open while only thoughts have arrived).
 * Plain text, never markdown: model output is untrusted.
 */
function thinkingElement(thoughts: string, open: boolean, tokens: number | undefined): HTMLElement {
  const details = document.createElement('details');
  details.className = 'thinking';
  details.open = open;
  const summary = document.createElement('summary');
  summary.textContent = open ? 'Thinking…' : tokens ? `Thought for ${tokens} tokens` : 'Thoughts';
  const text = document.createElement('div');
  text.className = 'thoughts muted';
  text.textContent = thoughts.trim();
  details.append(summary, text);
  return details;
}

/** Deltas arrive batched by the host; only the streaming message is re-rendered, at most every 50 ms. */
function scheduleStreamRender(): void {
  if (renderScheduled) return;
  renderScheduled = true;
  setTimeout(() => {
    renderScheduled = false;
    if (!streamElement) return;
    if (view.streamThoughts) {
      const existing = streamElement.querySelector('details.thinking');
      const open = existing ? (existing as HTMLDetailsElement).open && !view.streamText : !view.streamText;
      const fresh = thinkingElement(view.streamThoughts, open, undefined);
      if (existing) existing.replaceWith(fresh); else streamElement.prepend(fresh);
    }
    showStreamText(streamElement.querySelector<HTMLElement>('.body')!);
    scrollToEnd();
  }, 50);
}

/** The streaming reply's text so far, and the cursor after it. */
function showStreamText(body: HTMLElement): void {
  body.querySelector(':scope > .cursor')?.remove();
  stream?.update(view.streamText);
  body.append(cursor());
}

function cursor(): HTMLElement {
  const c = document.createElement('span');
  c.className = 'cursor';
  c.setAttribute('aria-hidden', 'true');
  return c;
}

function scrollToEnd(): void {
  const nearEnd = ui.messages.scrollHeight - ui.messages.scrollTop - ui.messages.clientHeight < 120;
  if (nearEnd || view.generating) ui.messages.scrollTop = ui.messages.scrollHeight;
}

function renderModel(): void {
  const m = view.model;
  const labels: Record<ModelView['kind'], string> = {
    none: 'No model', loading: `Loading ${m.name ?? ''} ${Math.round((m.progress ?? 0) * 100)}%`, ready: m.name ?? 'Ready',
    error: 'Model error', unloaded: `${m.name ?? ''} (unloaded)`, downloading: `Downloading ${Math.round((m.progress ?? 0) * 100)}%`,
  };
  ui.modelState.textContent = labels[m.kind];
  ui.modelState.className = `model-state ${m.kind}`;
  if (m.kind === 'none') {
    showBanner('info', 'No model yet. nanochat runs a small language model on this machine — download one, or use a GGUF file you already have.',
      [['Download a model', 'download'], ['Use a local GGUF file…', 'useLocal']]);
  } else if (m.kind === 'error') {
    showBanner('error', m.error ?? 'The model could not be loaded.', [['Retry', 'retry'], ['Choose another model…', 'select'], ['Show logs', 'logs']]);
  } else if (m.kind === 'loading' || m.kind === 'downloading') {
    showBanner('progress', labels[m.kind], [], m.progress);
  } else {
    ui.banner.hidden = true;
  }
  renderContext();
}

function showBanner(kind: 'info' | 'error' | 'progress', text: string, actions: Array<[string, 'download' | 'useLocal' | 'select' | 'retry' | 'logs']>, progress?: number): void {
  ui.banner.hidden = false;
  ui.banner.className = `banner ${kind}`;
  ui.banner.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  const message = document.createElement('span');
  message.textContent = text;
  const children: HTMLElement[] = [message];
  if (progress !== undefined) {
    const bar = document.createElement('progress');
    bar.max = 1;
    bar.value = progress;
    children.push(bar);
  }
  for (const [label, command] of actions) {
    const button = document.createElement('button');
    button.textContent = label;
    button.addEventListener('click', () => post({ type: 'command', command }));
    children.push(button);
  }
  ui.banner.replaceChildren(...children);
}

function renderContext(): void {
  const size = view.model.contextSize;
  if (!size) { ui.contextLabel.textContent = ''; ui.contextFill.style.width = '0'; return; }
  const share = Math.min(1, view.contextUsed / size);
  ui.contextFill.style.width = `${(share * 100).toFixed(1)}%`;
  ui.contextLabel.textContent = `${view.contextUsed.toLocaleString()} / ${size.toLocaleString()}`;
  ui.contextLabel.title = `${(share * 100).toFixed(0)}% of the context window used`;
}

function iconButton(icon: string, title: string, onClick: () => void): HTMLButtonElement {
  const button = document.createElement('button');
  button.className = 'icon';
  button.title = title;
  button.setAttribute('aria-label', title);
  const glyph = document.createElement('span');
  glyph.className = `codicon codicon-${icon}`;
  button.append(glyph);
  button.addEventListener('click', (e) => { e.stopPropagation(); onClick(); });
  return button;
}

// ---- input -------------------------------------------------------------------------------

function send(): void {
  const text = ui.input.value.trim();
  if (!text || view.generating) return;
  post({ type: 'send', conversationId: view.activeId, text });
  ui.input.value = '';
  vscode.setState({ draft: '' });
}

ui.composer.addEventListener('submit', (e) => { e.preventDefault(); send(); });
ui.input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
});
ui.input.addEventListener('input', () => vscode.setState({ draft: ui.input.value }));
ui.stop.addEventListener('click', () => post({ type: 'stop', conversationId: view.activeId }));
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && view.generating) { e.preventDefault(); post({ type: 'stop', conversationId: view.activeId }); }
});
ui.newChat.addEventListener('click', () => post({ type: 'newConversation' }));
ui.toggleSettings.addEventListener('click', () => {
  ui.settings.hidden = !ui.settings.hidden;
  ui.toggleSettings.setAttribute('aria-expanded', String(!ui.settings.hidden));
});
ui.temperature.addEventListener('change', () => {
  const value = Number(ui.temperature.value);
  if (panelSettingsSchema.shape.temperature.safeParse(value).success) post({ type: 'setSetting', key: 'temperature', value });
});
ui.maxTokens.addEventListener('change', () => {
  const value = Math.round(Number(ui.maxTokens.value));
  if (panelSettingsSchema.shape.maxTokens.safeParse(value).success) post({ type: 'setSetting', key: 'maxTokens', value });
});
ui.systemPrompt.addEventListener('change', () => post({ type: 'setSetting', key: 'systemPrompt', value: ui.systemPrompt.value }));

ui.messages.addEventListener('click', (e) => {
  const button = (e.target as HTMLElement).closest<HTMLButtonElement>('button[data-code-action]');
  if (!button) return;
  const block = button.closest('.code-block');
  const code = (block?.querySelector('code')?.textContent ?? '').replace(/\n$/, '');
  const action = button.dataset.codeAction as 'copy' | 'insert' | 'open';
  post({ type: 'code', action, code, language: (block as HTMLElement | null)?.dataset.language ?? '' });
  if (action === 'copy') {
    button.classList.add('done');
    setTimeout(() => button.classList.remove('done'), 1200);
  }
});

const saved = vscode.getState() as { draft?: string } | undefined;
if (saved?.draft) ui.input.value = saved.draft;
renderModel();
post({ type: 'ready' });
warmUpHighlighting();
