import DOMPurify from 'dompurify';
import hljs from 'highlight.js/lib/common';
import MarkdownIt from 'markdown-it';

/**
 * Model output is untrusted: markdown-it renders it with raw HTML disabled (and refuses
 * javascript:/vbscript:/file: links), then DOMPurify strips anything left that could run script,
 * style the page or load content (images, frames, forms, inline styles).
 */
const md = new MarkdownIt({
  html: false,
  linkify: true,
  breaks: false,
  highlight: (code: string, language: string): string => {
    try {
      if (language && hljs.getLanguage(language)) return hljs.highlight(code, { language, ignoreIllegals: true }).value;
      return hljs.highlightAuto(code).value;
    } catch {
      return '';
    }
  },
});

md.renderer.rules.fence = (tokens, index) => {
  const token = tokens[index];
  const language = (token.info || '').trim().split(/\s+/)[0].replace(/[^\w+#.-]/g, '').slice(0, 30);
  const highlighted = md.options.highlight?.(token.content, language, '') || md.utils.escapeHtml(token.content);
  const label = language ? `<span class="code-language">${md.utils.escapeHtml(language)}</span>` : '<span class="code-language"></span>';
  return `<div class="code-block" data-language="${md.utils.escapeHtml(language)}"><div class="code-toolbar">${label}`
    + '<button class="icon" data-code-action="copy" title="Copy" aria-label="Copy"><span class="codicon codicon-copy"></span></button>'
    + '<button class="icon" data-code-action="insert" title="Insert at cursor" aria-label="Insert at cursor"><span class="codicon codicon-insert"></span></button>'
    + '<button class="icon" data-code-action="open" title="Open in new editor" aria-label="Open in new editor"><span class="codicon codicon-go-to-file"></span></button>'
    + `</div><pre><code class="hljs">${highlighted}</code></pre></div>`;
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

export function renderMarkdown(text: string): string {
  return DOMPurify.sanitize(md.render(text), {
    FORBID_TAGS: ['style', 'img', 'svg', 'math', 'iframe', 'form', 'input', 'video', 'audio', 'source', 'object', 'embed', 'link', 'meta', 'base'],
    FORBID_ATTR: ['style', 'srcset', 'src', 'action', 'formaction', 'background', 'ping'],
    ALLOW_DATA_ATTR: true,
  });
}
