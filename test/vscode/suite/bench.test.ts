import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as vscode from 'vscode';
import { benchReportSchema, readHistory, type BenchReport } from '../../../src/core/bench/bench';
import { host, noHistory, recordingStream, request, token, type Api } from './helpers';

export function defineBenchTests(): void {
  describe('benchmarks in the real extension host', () => {
    let api: Api;
    const model = host.model;
    before(() => { api = host.api; });

    it('benchmarks: /bench, then "Run Benchmark" compared with it in the report webview, history, Markdown export, cancel', async function () {
      this.timeout(240_000);
      fs.rmSync(api.bench.historyFile, { force: true });
      const bench = recordingStream();
      await api.participant.handler(request('', 'bench'), noHistory, bench.stream, token());
      assert.match(bench.text(), /stories260K \(llama, [\d.]+ [KM]B\) on .* cores, CPU\*\*, medians of 2 runs:/);
      assert.match(bench.text(), /\| Generation \(median\) \| [\d.,]+ tok\/s \|/);
      assert.ok(bench.progress.some((p) => /Benchmark: Time to first token/.test(p)), bench.progress.join(' | '));
      assert.ok(bench.buttons.some((b) => b.command === 'nanochat.showBenchmarkReport'));

      const report = await vscode.commands.executeCommand<BenchReport>('nanochat.runBenchmark', { quick: true });
      assert.ok(benchReportSchema.safeParse(report).success);
      assert.equal(report.model.path, model);
      assert.ok(report.extension && report.extension.activationMs > 0 && report.extension.activationMs < 10_000, 'extension activation time');
      assert.ok(report.extension.readyMs !== undefined && report.extension.readyMs > report.extension.activationMs, 'activation to model ready (loaded on startup)');
      assert.ok(report.generationTokensPerSecond.median > 0 && report.firstTokenMs.short.median > 0 && report.load.totalMs > 0);
      const history = readHistory(api.bench.historyFile);
      assert.deepEqual(history.map((r) => r.createdAt), [history[0]!.createdAt, report.createdAt], 'both runs are kept in extension storage');
      assert.equal(api.bench.webviewPanel?.viewType, 'nanochat.benchReport');
      assert.ok(api.bench.webviewPanel?.visible);

      const exported = vscode.Uri.file(path.join(os.tmpdir(), `nanochat-bench-${process.pid}.md`));
      assert.equal((await api.bench.exportMarkdown(exported))?.fsPath, exported.fsPath);
      const markdown = fs.readFileSync(exported.fsPath, 'utf8');
      fs.rmSync(exported.fsPath);
      assert.match(markdown, /\| Section \| Measurement \| Value \| Previous \| Change \|/, 'compared with the /bench run');
      assert.match(markdown, /\| Cold start \| Extension activation \| [\d.]+ ms \|/);
      await api.bench.receive({ type: 'exportMarkdown', path: '/etc/passwd' }); // malformed: dropped, no dialog
      await api.bench.receive({ type: 'nonsense' });

      const source = new vscode.CancellationTokenSource();
      await assert.rejects(api.bench.run({ quick: true }, source.token, (step) => { if (step === 'Loading') source.cancel(); }), /cancelled/);
      assert.equal(readHistory(api.bench.historyFile).length, 2, 'a cancelled run records nothing');
      assert.equal(api.bench.isRunning, false);
      api.bench.webviewPanel?.dispose();
    });
  });
}
