import './jitless';
import '@vscode/codicons/dist/codicon.css';
import './bench.css';
import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, LineController, LineElement, PointElement, Tooltip, type ChartConfiguration } from 'chart.js';
import { benchFromWebviewSchema, benchToWebviewSchema, type BenchFromWebview, type BenchToWebview } from '../src/protocol/bench';
import { benchRows, benchTitle, formatChange, formatValue } from '../src/core/bench/report';

/**
 * The benchmark report: summary cards, charts (Chart.js on canvases: nothing but our bundle runs),
 * and a table of every measurement with the change from the previous run of the same model.
 */
Chart.register(BarController, BarElement, CategoryScale, LinearScale, LineController, LineElement, PointElement, Legend, Tooltip);

declare function acquireVsCodeApi(): { postMessage(message: unknown): void; getState(): unknown; setState(state: unknown): void };
const vscode = acquireVsCodeApi();
const post = (message: BenchFromWebview) => vscode.postMessage(benchFromWebviewSchema.parse(message));
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const charts = new Map<string, Chart>();

const css = (name: string, fallback: string) => getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
const palette = () => ({
  current: css('--vscode-charts-blue', '#3794ff'),
  previous: css('--vscode-charts-foreground', '#888888'),
  load: css('--vscode-charts-orange', '#d18616'),
  green: css('--vscode-charts-green', '#89d185'),
  text: css('--vscode-foreground', '#cccccc'),
  grid: css('--vscode-editorWidget-border', 'rgba(128,128,128,0.3)'),
});

function chart(id: string, config: ChartConfiguration): void {
  charts.get(id)?.destroy();
  const colors = palette();
  Chart.defaults.color = colors.text;
  Chart.defaults.borderColor = colors.grid;
  Chart.defaults.font.family = css('--vscode-font-family', 'sans-serif');
  config.options = { animation: false, responsive: true, maintainAspectRatio: false, ...config.options };
  charts.set(id, new Chart($<HTMLCanvasElement>(id), config));
}

function render(data: BenchToWebview): void {
  const { report, previous, history } = data;
  const colors = palette();
  $('title').textContent = `Benchmark: ${report.model.name}`;
  $('subtitle').textContent = `${benchTitle(report)} · ${report.quick ? 'quick run' : 'full run'}, medians of ${report.runs} runs · ${new Date(report.createdAt).toLocaleString()}`
    + (previous ? ` · compared with ${new Date(previous.createdAt).toLocaleString()}` : ' · first run of this model');

  const rows = benchRows(report, previous ?? undefined);
  const cards = $('summary');
  cards.replaceChildren();
  const featured: Array<[string, string]> = [['Generation (median)', 'Speed'], ['Prompt processing', 'Speed'], ['Total', 'Cold start'], ['Speed-up from reuse', 'Multi-turn'], ['Memory-bandwidth utilisation', 'Speed'], ['RSS after load', 'Memory and machine']];
  for (const [label, section] of featured) {
    const row = rows.find((r) => r.label === label && r.section === section);
    if (!row) continue;
    const card = document.createElement('div');
    card.className = 'card';
    const name = document.createElement('div');
    name.className = 'muted';
    name.textContent = section === 'Cold start' ? 'Cold start' : label;
    const value = document.createElement('div');
    value.className = 'value';
    value.textContent = formatValue(row.value, row.unit);
    const change = document.createElement('div');
    change.className = `change ${/better/.test(formatChange(row)) ? 'better' : /worse/.test(formatChange(row)) ? 'worse' : ''}`;
    change.textContent = formatChange(row);
    card.append(name, value, change);
    cards.append(card);
  }

  const pair = (label: string, values: number[], before?: number[]) => [
    { label: 'This run', data: values, backgroundColor: colors.current, borderColor: colors.current },
    ...(before ? [{ label: 'Previous run', data: before, backgroundColor: colors.previous, borderColor: colors.previous }] : []),
  ].map((d) => ({ ...d, label: `${d.label}${label}` }));
  const throughput = (r: typeof report) => [r.promptTokensPerSecond.median, r.generationTokensPerSecond.median, r.generationTokensPerSecond.p95];
  chart('throughput-chart', { type: 'bar', data: { labels: ['Prompt', 'Generation (median)', 'Generation (p95)'], datasets: pair('', throughput(report), previous ? throughput(previous) : undefined) } });
  // A server's point is concurrency: the same chart shows throughput at 1, 4 and 16 requests at once.
  const levels = report.concurrency ?? [];
  $('threads-caption').textContent = levels.length ? 'Throughput by requests at once (tokens/s, all requests)' : 'Generation by threads (tokens/s)';
  chart('threads-chart', {
    type: 'bar',
    data: levels.length
      ? { labels: levels.map((c) => `${c.requests} at once`), datasets: [{ label: 'All requests', data: levels.map((c) => c.tokensPerSecond), backgroundColor: colors.current }] }
      : {
        labels: report.threads.map((t) => `${t.threads} thread${t.threads === 1 ? '' : 's'}${t.threads === report.defaultThreads ? ' (default)' : ''}`),
        datasets: [
          { label: 'Alone', data: report.threads.map((t) => t.tokensPerSecond), backgroundColor: colors.current },
          { label: 'Under CPU load', data: report.threads.map((t) => t.underLoadTokensPerSecond), backgroundColor: colors.load },
        ],
      },
  });
  const tokenizer = (r: typeof report) => [r.tokenizer.jsTokensPerSecond, r.tokenizer.llamaTokensPerSecond];
  chart('tokenizer-chart', { type: 'bar', data: { labels: ['JS (@huggingface/tokenizers)', report.backend === 'server' ? 'Server /tokenize' : 'llama.cpp'], datasets: pair('', tokenizer(report), previous ? tokenizer(previous) : undefined) }, options: { indexAxis: 'y' } });
  const turns = Array.from({ length: Math.max(report.multiTurn.turns, previous?.multiTurn.turns ?? 0) }, (_, i) => `Turn ${i + 1}`);
  chart('turns-chart', {
    type: 'line',
    data: {
      labels: turns,
      datasets: [
        { label: 'With KV-cache reuse', data: report.multiTurn.firstTokenMsByTurn, borderColor: colors.current, backgroundColor: colors.current },
        { label: `Re-evaluating the history (turn ${report.multiTurn.turns})`, data: [...Array(report.multiTurn.turns - 1).fill(null), report.multiTurn.withoutReuseMs], borderColor: colors.load, backgroundColor: colors.load, pointRadius: 5 },
        ...(previous ? [{ label: 'Previous run, with reuse', data: previous.multiTurn.firstTokenMsByTurn, borderColor: colors.previous, backgroundColor: colors.previous, borderDash: [4, 4] }] : []),
      ],
    },
    options: { scales: { y: { beginAtZero: true } } },
  });
  chart('history-chart', {
    type: 'line',
    data: {
      labels: history.map((h) => new Date(h.createdAt).toLocaleDateString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' })),
      datasets: [{ label: 'Generation tok/s', data: history.map((h) => h.generationTokensPerSecond), borderColor: colors.green, backgroundColor: colors.green }],
    },
    options: { scales: { y: { beginAtZero: true } } },
  });

  // Each speed goal beside what this run measured.
  const goals = report.goals ?? [];
  $('goals-section').hidden = goals.length === 0;
  $('goals').querySelector('tbody')!.replaceChildren(...goals.map((g) => {
    const tr = document.createElement('tr');
    for (const [i, text] of [g.name, g.measured, g.goal, g.met ? 'yes' : 'no'].entries()) {
      const td = document.createElement('td');
      td.textContent = text;
      if (i === 3) td.className = g.met ? 'better' : 'worse';
      tr.append(td);
    }
    return tr;
  }));

  const head = $('table').querySelector('thead')!;
  const body = $('table').querySelector('tbody')!;
  const headings = ['Section', 'Measurement', 'Value', ...(previous ? ['Previous', 'Change'] : [])];
  const headRow = document.createElement('tr');
  for (const h of headings) { const th = document.createElement('th'); th.textContent = h; th.scope = 'col'; headRow.append(th); }
  head.replaceChildren(headRow);
  body.replaceChildren(...rows.map((row) => {
    const tr = document.createElement('tr');
    const cells = [row.section, row.label, formatValue(row.value, row.unit), ...(previous ? [row.previous === undefined ? '' : formatValue(row.previous, row.unit), formatChange(row)] : [])];
    cells.forEach((text, i) => {
      const td = document.createElement('td');
      td.textContent = text;
      if (i >= 2) td.className = 'number';
      if (i === 4) td.classList.add(/better/.test(text) ? 'better' : /worse/.test(text) ? 'worse' : 'same');
      tr.append(td);
    });
    return tr;
  }));
  $('footnote').textContent = report.backend === 'server'
    ? `Measured against ${report.server?.url ?? 'the server'} from this machine; time to first token includes the network. Multi-turn "without reuse" changes the first line so the server's prompt cache cannot answer.`
    : `Default threads: up to ${report.defaultThreads} for generation (the fastest count at the moment)${report.defaultPlan ? `, ${report.defaultPlan.prompt} for prompts` : ''}. Read bandwidth is measured with as many readers as decoding threads; utilisation = model bytes × generation tok/s ÷ that bandwidth.`;
  $('report').setAttribute('aria-busy', 'false');
  document.body.dataset.rendered = report.createdAt;
}

window.addEventListener('message', (event: MessageEvent) => {
  const parsed = benchToWebviewSchema.safeParse(event.data);
  if (!parsed.success) { console.warn(`nanochat: dropped a malformed message: ${parsed.error.issues[0]?.message}`); return; }
  vscode.setState(parsed.data);
  render(parsed.data);
});
$('run-again').addEventListener('click', () => post({ type: 'runAgain' }));
$('export').addEventListener('click', () => post({ type: 'exportMarkdown' }));
$('copy').addEventListener('click', () => post({ type: 'copyMarkdown' }));

const saved = benchToWebviewSchema.safeParse(vscode.getState());
if (saved.success) render(saved.data);
post({ type: 'ready' });
