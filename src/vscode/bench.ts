import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as vscode from 'vscode';
import { benchFromWebviewSchema, type BenchFromWebview, type BenchToWebview } from '../protocol/bench';
import { appendHistory, BenchCancelledError, previousRun, readHistory } from '../core/bench/bench';
import { benchMarkdown } from '../core/bench/report';
import { runBenchmarkInChild } from '../core/bench/runner';
import type { BenchReport } from '../core/bench/schema';
import type { BlockFigures } from '../core/eventLoop';
import { NanochatError, errorMessage } from '../core/errors';
import { benchHtml } from '../../webview/html';
import { COMMANDS, type Services } from './services';
import { attachWebview } from './webview';
import { abortOn } from './cancellation';
import { runServerBenchmark } from '../core/bench/serverBench';
import { serverKeySecret } from './secrets';

export const BENCH_VIEW_TYPE = 'nanochat.benchReport';

export interface BenchRunRequest {
  /** Defaults to the selected model. */
  modelPath?: string;
  quick?: boolean;
  runs?: number;
}
export interface BenchResult { report: BenchReport; previous?: BenchReport }

/**
 * "Nanochat: Run Benchmark", `@nanochat /bench` and the report webview. The benchmark itself runs in
 * a child process (core/benchRunner.ts); reports are kept as JSON lines in the extension's global
 * storage and each is compared with the previous run of the same model.
 */
export class Benchmarks implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private shown: BenchToWebview | undefined;
  private running: Promise<BenchResult> | undefined;
  private readonly subscriptions: vscode.Disposable[] = [];
  /** How long activate() took; added to every report run from the extension. */
  activationMs: number | undefined;
  /** From activation to the selected model ready, when it loaded on startup. */
  readyMs: number | undefined;
  /** The event loop's longest block between activation and the model ready, loaded on startup: whole, less garbage collection, and less that and waiting for a CPU (told after the model is ready). */
  startupBlocks: BlockFigures | undefined;
  get startupMaxBlockMs(): number | undefined { return this.startupBlocks?.longestMs; }
  /**
   * CPU time (ms, all of the extension host's threads) between activation and the model ready: with
   * the editor starting on the same cores, the wall time can be several times the work.
   */
  startupCpuMs: number | undefined;

  constructor(private readonly services: Services) {
    this.subscriptions.push(
      vscode.window.registerWebviewPanelSerializer(BENCH_VIEW_TYPE, {
        deserializeWebviewPanel: async (panel, state) => {
          this.attach(panel);
          const restored = state as BenchToWebview | undefined;
          if (restored?.report) this.shown = restored;
        },
      }),
      vscode.commands.registerCommand(COMMANDS.bench, (request?: BenchRunRequest) => this.runCommand(request)),
      vscode.commands.registerCommand(COMMANDS.showBenchReport, () => this.showLatest()),
    );
  }

  get historyFile(): string { return path.join(this.services.context.globalStorageUri.fsPath, 'bench-history.jsonl'); }
  get webviewPanel(): vscode.WebviewPanel | undefined { return this.panel; }
  get isRunning(): boolean { return this.running !== undefined; }

  /**
   * Runs a benchmark and records it. One at a time: a second request while one runs gets the running
   * one's result. Rejects with BenchCancelledError when the token is cancelled.
   */
  run(request: BenchRunRequest, token?: vscode.CancellationToken, onProgress?: (step: string, fraction: number) => void): Promise<BenchResult> {
    if (this.running) return this.running;
    const settings = this.services.settings.current;
    const server = settings.backend === 'server' && !request.modelPath;
    const modelPath = request.modelPath ?? (server ? settings['server.url'] : this.services.models.selectedPath);
    if (!modelPath) return Promise.reject(new NanochatError(server ? 'Set nanochat.server.url to benchmark a server.' : 'Select a model to benchmark first.'));
    const cancel = token ? abortOn(token) : undefined;
    const log = this.services.log;
    log.info(`Benchmark of ${modelPath} started (${request.quick ? 'quick' : 'full'}).`);
    const progress = (step: string, fraction: number) => { log.debug(`Benchmark: ${step}`); onProgress?.(step, fraction); };
    this.running = (async () => {
      // A server is measured from here (it is all HTTP); the embedded engine in a child process, so its
      // second copy of the model and its CPU-load test never slow the editor.
      const report = server
        ? await runServerBenchmark({
          url: modelPath, model: settings['server.model'] || undefined, quick: request.quick, runs: request.runs, signal: cancel?.signal, onProgress: progress,
          apiKey: await this.services.context.secrets.get(serverKeySecret(new URL(modelPath).origin)),
        })
        : await runBenchmarkInChild({
          modelPath, quick: request.quick, runs: request.runs, signal: cancel?.signal, log,
          workerScript: path.join(this.services.context.extensionUri.fsPath, 'dist', 'benchWorker.js'),
          onProgress: progress,
        });
      if (this.activationMs !== undefined) report.extension = { activationMs: Math.round(this.activationMs * 10) / 10, ...(this.readyMs === undefined ? {} : { readyMs: Math.round(this.readyMs) }), ...(this.startupCpuMs === undefined ? {} : { startupCpuMs: Math.round(this.startupCpuMs) }), ...(this.startupMaxBlockMs === undefined ? {} : { startupMaxBlockMs: Math.round(this.startupMaxBlockMs) }), ...(this.startupBlocks === undefined ? {} : { startupOwnBlockMs: Math.round(this.startupBlocks.longestOwnMs) }) };
      const previous = appendHistory(this.historyFile, report);
      log.info(`Benchmark done: ${report.generationTokensPerSecond.median} tok/s generation, first token ${report.firstTokenMs.short.median} ms.`);
      return { report, previous };
    })().finally(() => { cancel?.dispose(); this.running = undefined; });
    return this.running;
  }

  /** The palette command: asks what it needs, shows a cancellable progress notification, then the report. */
  private async runCommand(request: BenchRunRequest = {}): Promise<BenchReport | undefined> {
    if (this.running) {
      void vscode.window.showInformationMessage('A benchmark is already running.');
      return (await this.running.catch(() => undefined))?.report;
    }
    const settings = this.services.settings.current;
    const server = settings.backend === 'server' && !request.modelPath;
    const modelPath = request.modelPath ?? (server ? settings['server.url'] : this.services.models.selectedPath);
    if (!modelPath) {
      const choice = await vscode.window.showWarningMessage(server ? 'Set nanochat.server.url to benchmark a server.' : 'Select a model to benchmark first.', 'Select Model…', 'Download Model…');
      if (choice) await vscode.commands.executeCommand(choice === 'Select Model…' ? COMMANDS.select : COMMANDS.download);
      return undefined;
    }
    let quick = request.quick;
    if (quick === undefined) {
      const pick = await vscode.window.showQuickPick([
        { label: '$(zap) Quick', description: 'about half a minute on a small model', quick: true },
        { label: '$(dashboard) Full', description: 'more runs and all thread counts: several minutes', quick: false },
      ], { title: `Benchmark ${path.basename(modelPath)}` });
      if (!pick) return undefined;
      quick = pick.quick;
    }
    try {
      const result = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Benchmarking ${path.basename(modelPath)}`, cancellable: true }, (progress, token) => {
        let done = 0;
        return this.run({ ...request, modelPath: server ? undefined : modelPath, quick }, token, (step, fraction) => {
          progress.report({ message: step, increment: Math.max(0, fraction * 100 - done) });
          done = Math.max(done, fraction * 100);
        });
      });
      this.show(result);
      return result.report;
    } catch (err) {
      if (err instanceof BenchCancelledError) void vscode.window.showInformationMessage('Benchmark cancelled.');
      else {
        this.services.log.error(`Benchmark failed: ${errorMessage(err)}`);
        void vscode.window.showErrorMessage(`The benchmark failed: ${errorMessage(err)}`, 'Show Logs').then((c) => c && vscode.commands.executeCommand(COMMANDS.showLogs));
      }
      return undefined;
    }
  }

  /** Opens (or updates) the report webview with a result. */
  show(result: BenchResult): vscode.WebviewPanel {
    const history = readHistory(this.historyFile).filter((r) => r.model.path === result.report.model.path).slice(-50);
    this.shown = {
      type: 'report', report: result.report, previous: result.previous ?? null,
      history: history.map((r) => ({ createdAt: r.createdAt, generationTokensPerSecond: r.generationTokensPerSecond.median, firstTokenMs: r.firstTokenMs.short.median })),
    };
    if (!this.panel) this.attach(vscode.window.createWebviewPanel(BENCH_VIEW_TYPE, 'Nanochat Benchmark', vscode.ViewColumn.Active, {}));
    else this.panel.reveal();
    void this.panel!.webview.postMessage(this.shown);
    return this.panel!;
  }

  /** The newest report in the history, or an offer to run one. */
  async showLatest(): Promise<BenchReport | undefined> {
    const history = readHistory(this.historyFile);
    const report = history.at(-1);
    if (!report) {
      const choice = await vscode.window.showInformationMessage('No benchmark has run yet.', 'Run Benchmark');
      if (choice) return vscode.commands.executeCommand(COMMANDS.bench);
      return undefined;
    }
    this.show({ report, previous: previousRun(history, report.model.path, report) });
    return report;
  }

  /** The shown report as Markdown; written to `target`, or to a file the user picks. */
  async exportMarkdown(target?: vscode.Uri): Promise<vscode.Uri | undefined> {
    if (!this.shown) return undefined;
    const { report, previous } = this.shown;
    const markdown = benchMarkdown(report, previous ?? undefined);
    const name = `nanochat-bench-${report.model.name.replace(/[^\w.-]+/g, '_')}-${report.createdAt.slice(0, 19).replace(/[:T]/g, '-')}.md`;
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri ?? vscode.Uri.file(os.homedir());
    const uri = target ?? await vscode.window.showSaveDialog({ defaultUri: vscode.Uri.joinPath(folder, name), filters: { Markdown: ['md'] }, title: 'Export Benchmark Report' });
    if (!uri) return undefined;
    try {
      await fs.writeFile(uri.fsPath, markdown);
    } catch (err) {
      void vscode.window.showErrorMessage(`Cannot write ${uri.fsPath}: ${errorMessage(err)}`);
      return undefined;
    }
    if (!target) await vscode.window.showTextDocument(uri, { preview: true });
    return uri;
  }

  private attach(panel: vscode.WebviewPanel): void {
    this.panel = panel;
    attachWebview(panel, this.services.context.extensionUri, { html: benchHtml, script: 'bench.js', style: 'bench.css' },
      (raw) => void this.receive(raw), () => { if (this.panel === panel) this.panel = undefined; });
  }

  /** Validates and handles one message from the report webview; malformed ones are dropped and logged. */
  async receive(raw: unknown): Promise<void> {
    const parsed = benchFromWebviewSchema.safeParse(raw);
    if (!parsed.success) {
      this.services.log.warn(`Dropped a malformed message from the benchmark report: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
      return;
    }
    const message: BenchFromWebview = parsed.data;
    switch (message.type) {
      case 'ready': if (this.shown) void this.panel?.webview.postMessage(this.shown); break;
      case 'exportMarkdown': await this.exportMarkdown(); break;
      case 'copyMarkdown':
        if (this.shown) {
          await vscode.env.clipboard.writeText(benchMarkdown(this.shown.report, this.shown.previous ?? undefined));
          void vscode.window.showInformationMessage('Benchmark report copied as Markdown.');
        }
        break;
      case 'runAgain':
        if (this.shown) await vscode.commands.executeCommand(COMMANDS.bench, { modelPath: this.shown.report.model.path, quick: this.shown.report.quick });
        break;
    }
  }

  dispose(): void {
    this.panel?.dispose();
    for (const s of this.subscriptions) s.dispose();
  }
}
