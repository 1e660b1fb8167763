import DOMPurify from 'dompurify';
import hljs from 'highlight.js/lib/common';
import MarkdownIt from 'markdown-it';
import { settledLength } from './settled';

/**
 * Model output is untrusted: markdown-it renders it with raw HTML disabled (and refuses
 * javascript:/vbscript:/file: links), then DOMPurify strips anything left that could run script,
 * style the page or load content (images, frames, forms, inline styles).
 */
const md = new MarkdownIt({ html: false, linkify: true, breaks: false });

/**
 * Highlighting is most of what rendering a reply costs. Guessing the language of a block without one
 * runs every grammar over it: with all of highlight.js's 37 common grammars, 11–60 ms for 2,000–5,000
 * characters (0.6 s for 40,000), and 180–320 ms the first time, while the grammars compile. So a guess
 * looks at the first DETECT_CHARS characters only, among the languages models write most (4–6 ms
 * warm), and the block is then highlighted in the language guessed; the grammars are compiled while
 * the panel is idle (warmUpHighlighting). Each block is highlighted once: the results are kept by
 * language and code (the least recently used dropped past 2 million characters), so re-rendering a
 * message, or rendering a finished one whose blocks were highlighted while it streamed, costs only the
 * markdown.
 */
const DETECT = ['bash', 'c', 'cpp', 'csharp', 'css', 'go', 'java', 'javascript', 'json', 'kotlin', 'markdown', 'php', 'python', 'ruby', 'rust', 'shell', 'sql', 'typescript', 'xml', 'yaml']
  .filter((language) => hljs.getLanguage(language));
const DETECT_CHARS = 1_000;

/** Texts by key, least recently used dropped first once keys and values pass `limit` characters. */
class TextCache {
  private readonly entries = new Map<string, string>();
  private size = 0;

  constructor(private readonly limit: number) {}

  get(key: string): string | undefined {
    const value = this.entries.get(key);
    if (value !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, value);
    }
    return value;
  }

  set(key: string, value: string): void {
    if (key.length + value.length > this.limit || this.entries.has(key)) return;
    this.entries.set(key, value);
    this.size += key.length + value.length;
    for (const [oldKey, oldValue] of this.entries) {
      if (this.size <= this.limit) break;
      this.entries.delete(oldKey);
      this.size -= oldKey.length + oldValue.length;
    }
  }
}

const highlighted = new TextCache(2_000_000);

function highlight(code: string, language: string, detect: boolean): string | undefined {
  const known = Boolean(language && hljs.getLanguage(language));
  if (!known && !detect) return undefined;
  const key = `${known ? language : ''}\u0000${code}`;
  const cached = highlighted.get(key);
  if (cached !== undefined) return cached;
  let html: string | undefined;
  try {
    if (known) html = hljs.highlight(code, { language, ignoreIllegals: true }).value;
    else {
      const guess = hljs.highlightAuto(code.slice(0, DETECT_CHARS), DETECT);
      if (code.length <= DETECT_CHARS) html = guess.value;
      else if (guess.language) html = hljs.highlight(code, { language: guess.language, ignoreIllegals: true }).value;
    }
  } catch {
    return undefined;
  }
  if (html === undefined) return undefined;
  highlighted.set(key, html);
  return html;
}

/** Compiles the grammars language guessing uses, one per idle moment, so the first guess does not. */
export function warmUpHighlighting(): void {
  const idle = (next: () => void) => (typeof requestIdleCallback === 'function' ? requestIdleCallback(() => next(), { timeout: 2_000 }) : setTimeout(next, 0));
  const languages = [...DETECT];
  const step = () => {
    const language = languages.shift();
    if (!language) return;
    try {
      hljs.highlight('value = call(1, "text") # note\n', { language, ignoreIllegals: true });
    } catch {
      // Only a warm-up.
    }
    idle(step);
  };
  idle(step);
}

/** `env.streaming`: a reply still arriving, whose last block may be cut off; its language is not guessed yet. */
type RenderEnv = Record<PropertyKey, unknown> & { streaming?: boolean };

md.renderer.rules.fence = (tokens, index, _options, env: RenderEnv | undefined) => {
  const token = tokens[index];
  const language = (token.info || '').trim().split(/\s+/)[0].replace(/[^\w+#.-]/g, '').slice(0, 30);
  const code = highlight(token.content, language, !env?.streaming) ?? md.utils.escapeHtml(token.content);
  const label = language ? `<span class="code-language">${md.utils.escapeHtml(language)}</span>` : '<span class="code-language"></span>';
  return `<div class="code-block" data-language="${md.utils.escapeHtml(language)}"><div class="code-toolbar">${label}`
    + '<button class="icon" data-code-action="copy" title="Copy" aria-label="Copy"><span class="codicon codicon-copy"></span></button>'
    + '<button class="icon" data-code-action="insert" title="Insert at cursor" aria-label="Insert at cursor"><span class="codicon codicon-insert"></span></button>'
    + '<button class="icon" data-code-action="open" title="Open in new editor" aria-label="Open in new editor"><span class="codicon codicon-go-to-file"></span></button>'
    + `</div><pre><code class="hljs">${code}</code></pre></div>`;
};

const defaultLinkOpen = md.renderer.rules.link_open ?? ((tokens, i, options, _env, self) => self.renderToken(tokens, i, options));
md.renderer.rules.link_open = (tokens, i, options, env, self) => {
  tokens[i].attrSet('rel', 'noopener noreferrer');
  tokens[i].attrSet('title', tokens[i].attrGet('href') ?? '');
  return defaultLinkOpen(tokens, i, options, env, self);
};

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node instanceof Element && node.tagName === 'A') {
    const href = node.getAttribute('href') ?? '';
    if (!/^(https?:|mailto:|#)/i.test(href)) node.removeAttribute('href');
  }
});

const SANITIZE = {
  FORBID_TAGS: ['style', 'img', 'svg', 'math', 'iframe', 'form', 'input', 'video', 'audio', 'source', 'object', 'embed', 'link', 'meta', 'base'],
  FORBID_ATTR: ['style', 'srcset', 'src', 'action', 'formaction', 'background', 'ping'],
  ALLOW_DATA_ATTR: true,
};

function render(text: string, env: RenderEnv): string {
  return DOMPurify.sanitize(md.render(text, env), SANITIZE);
}

/**
 * Every message is rendered again whenever the panel's state changes (a reply ends, a conversation
 * is switched to): the sanitized HTML of recent messages is kept by their text.
 */
const rendered = new TextCache(4_000_000);

export function renderMarkdown(text: string): string {
  const cached = rendered.get(text);
  if (cached !== undefined) return cached;
  const html = render(text, {});
  rendered.set(text, html);
  return html;
}

/**
 * A reply as it streams into `body`: the settled part (see settledLength) is rendered once, piece by
 * piece, and kept; only the rest is rendered again as text arrives. Rendering the whole text each time
 * made the panel's thread busy most of the time once a reply passed ~10,000 characters (blocks of
 * 150–230 ms), since each render grew with the reply. The finished message is rendered whole, once.
 */
export class MarkdownStream {
  private settled = 0;
  private text = '';
  private tail: ChildNode[] = [];

  constructor(private readonly body: HTMLElement) {}

  /** Shows `text`, which extends the text shown before (anything else starts over). */
  update(text: string): void {
    if (!text.startsWith(this.text)) this.reset();
    this.text = text;
    for (const node of this.tail) node.remove();
    const settled = settledLength(text, this.settled);
    if (settled > this.settled) {
      this.body.append(fragment(render(text.slice(this.settled, settled), {})));
      this.settled = settled;
    }
    const rest = fragment(render(text.slice(this.settled), { streaming: true }));
    this.tail = [...rest.childNodes];
    this.body.append(rest);
  }

  private reset(): void {
    this.body.replaceChildren();
    this.settled = 0;
    this.text = '';
    this.tail = [];
  }
}

function fragment(html: string): DocumentFragment {
  const template = document.createElement('template');
  template.innerHTML = html;
  return template.content;
}
