/**
 * The panel's HTML. A strict Content-Security-Policy: scripts only with this page's nonce, styles and
 * fonts only from the extension's own files, images only from there or data: URIs, no network.
 */
import { numberRange } from '../src/core/settings';

export interface PanelHtmlOptions { cspSource: string; nonce: string; scriptUri: string; styleUri: string }

function policy(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `img-src ${cspSource} data:`,
    `font-src ${cspSource}`,
    `style-src ${cspSource}`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
}

export function panelHtml(options: PanelHtmlOptions): string {
  const temperature = numberRange('temperature');
  const maxTokens = numberRange('maxTokens');
  return page(options, 'Nanochat', `<div id="app">
  <aside id="sidebar" aria-label="Conversations">
    <button id="new-chat" class="wide"><span class="codicon codicon-add"></span> New chat</button>
    <ul id="conversations" role="listbox" aria-label="Conversations"></ul>
  </aside>
  <main id="main">
    <header id="header">
      <span id="model-state" class="model-state" role="status"></span>
      <span class="spacer"></span>
      <span id="context-meter" class="meter" title="Context used"><span id="context-fill"></span></span>
      <span id="context-label" class="muted"></span>
      <button id="toggle-settings" class="icon" title="Generation settings" aria-expanded="false"><span class="codicon codicon-settings-gear"></span></button>
    </header>
    <section id="settings" hidden aria-label="Generation settings">
      <label>Temperature <input id="set-temperature" type="number" min="${temperature.min}" max="${temperature.max}" step="0.05"></label>
      <label>Max tokens <input id="set-max-tokens" type="number" min="${maxTokens.min}" max="${maxTokens.max}" step="1"></label>
      <label class="grow">System prompt <textarea id="set-system-prompt" rows="3"></textarea></label>
    </section>
    <section id="banner" hidden></section>
    <section id="messages" role="log" aria-live="polite" aria-label="Conversation"></section>
    <form id="composer">
      <textarea id="input" rows="3" placeholder="Ask the local model… (Enter sends, Shift+Enter for a new line)" aria-label="Message"></textarea>
      <button id="send" type="submit" title="Send (Enter)"><span class="codicon codicon-send"></span></button>
      <button id="stop" type="button" title="Stop (Esc)" hidden><span class="codicon codicon-debug-stop"></span></button>
    </form>
  </main>
</div>
`);
}

/** The benchmark report's HTML, under the same policy as the chat panel. */
export function benchHtml(options: PanelHtmlOptions): string {
  return page(options, 'Nanochat Benchmark', `<main id="report" aria-busy="true">
  <header>
    <h1 id="title">Nanochat benchmark</h1>
    <p id="subtitle" class="muted">Waiting for a report…</p>
    <div class="actions">
      <button id="run-again"><span class="codicon codicon-refresh"></span> Run again</button>
      <button id="export" class="secondary"><span class="codicon codicon-markdown"></span> Export as Markdown…</button>
      <button id="copy" class="secondary"><span class="codicon codicon-copy"></span> Copy Markdown</button>
    </div>
  </header>
  <section id="summary" class="cards" aria-label="Summary"></section>
  <section class="charts">
    <figure><figcaption>Throughput (tokens/s)</figcaption><div class="chart"><canvas id="throughput-chart" role="img" aria-label="Throughput bar chart"></canvas></div></figure>
    <figure><figcaption id="threads-caption">Generation by threads (tokens/s)</figcaption><div class="chart"><canvas id="threads-chart" role="img" aria-label="Threads bar chart"></canvas></div></figure>
    <figure><figcaption>Tokenizer (tokens/s)</figcaption><div class="chart"><canvas id="tokenizer-chart" role="img" aria-label="Tokenizer bar chart"></canvas></div></figure>
    <figure><figcaption>Multi-turn: time to first token by turn (ms)</figcaption><div class="chart"><canvas id="turns-chart" role="img" aria-label="Multi-turn line chart"></canvas></div></figure>
    <figure><figcaption>History: generation tokens/s per run</figcaption><div class="chart"><canvas id="history-chart" role="img" aria-label="History line chart"></canvas></div></figure>
  </section>
  <section id="goals-section" aria-label="Goals" hidden>
    <h2>Goals</h2>
    <table id="goals"><thead><tr><th scope="col">Goal</th><th scope="col">Measured</th><th scope="col">Target</th><th scope="col">Met</th></tr></thead><tbody></tbody></table>
  </section>
  <section aria-label="All measurements">
    <h2>All measurements</h2>
    <table id="table"><thead></thead><tbody></tbody></table>
    <p id="footnote" class="muted"></p>
  </section>
</main>
`);
}

/** A page under the policy above: the style sheet, the body, and the one script, carrying the nonce. */
function page({ cspSource, nonce, scriptUri, styleUri }: PanelHtmlOptions, title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${policy(cspSource, nonce)}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${escapeAttr(styleUri)}">
<title>${title}</title>
</head>
<body>
${body}<script nonce="${nonce}" src="${escapeAttr(scriptUri)}"></script>
</body>
</html>`;
}

function escapeAttr(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
}
