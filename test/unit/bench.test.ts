import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { appendHistory, BenchCancelledError, benchReportSchema, runBenchmark, type BenchReport } from '../../src/core/bench';
import { assertOneLineFailure } from '../support/cli';
import { REPO_ROOT, testModel } from '../support/models';

const run = promisify(execFile);

describe('benchmark', function () {
  this.timeout(180_000);
  let model: string;
  let report: BenchReport;
  before(async () => { model = await testModel('stories260K.gguf'); });

  it('reports every field with sane values on the fixture model (--quick)', async () => {
    const steps: string[] = [];
    report = await runBenchmark({ modelPath: model, quick: true, onProgress: (s) => steps.push(s) });
    assert.ok(benchReportSchema.safeParse(report).success);
    assert.equal(steps.at(-1), 'Done');
    assert.equal(report.runs, 2);
    assert.ok(report.load.totalMs > 0 && report.load.modelMs > 0);
    assert.ok(report.firstTokenMs.short.median > 0 && report.firstTokenMs.long.median > 0);
    assert.ok(report.promptTokens.long > report.promptTokens.short * 5);
    assert.ok(report.promptTokensPerSecond.median > 0);
    assert.ok(report.generationTokensPerSecond.median > 0 && report.generationTokensPerSecond.p95 >= report.generationTokensPerSecond.median);
    assert.equal(report.multiTurn.firstTokenMsByTurn.length, report.multiTurn.turns);
    assert.ok(report.multiTurn.withReuseMs > 0 && report.multiTurn.withoutReuseMs > 0 && report.multiTurn.speedup > 0);
    assert.ok(report.cancelLatencyMs.median >= 0);
    assert.ok(report.latencyMs.p50 > 0 && report.latencyMs.p99 >= report.latencyMs.p50);
    assert.equal(report.concurrentLatencyMs.requests, 10);
    assert.ok(report.tokenizer.jsTokensPerSecond > 0 && report.tokenizer.llamaTokensPerSecond > 0 && report.tokenizer.tokens > 10_000);
    assert.equal(report.memory.modelBytes, fs.statSync(model).size);
    assert.ok(report.memory.rssAfterBytes > 0 && report.memory.rssBeforeBytes > 0);
    assert.deepEqual(report.threads.map((t) => t.threads), [...new Set([1, os.availableParallelism()])]);
    for (const t of report.threads) assert.ok(t.tokensPerSecond > 0 && t.underLoadTokensPerSecond > 0);
    assert.equal(report.defaultThreads, Math.max(1, os.availableParallelism() - 1));
    assert.ok(report.machine.cores >= 1 && report.machine.cpu.length > 0 && report.machine.bandwidthBytesPerSecond > 1e8);
    assert.equal(report.machine.backend, 'cpu');
    assert.ok(report.bandwidthUtilisation > 0 && report.bandwidthUtilisation < 1);
  });

  it('stops when cancelled and says so', async () => {
    const controller = new AbortController();
    await assert.rejects(runBenchmark({ modelPath: model, quick: true, signal: controller.signal, onProgress: (step) => { if (step === 'Time to first token') controller.abort(); } }), BenchCancelledError);
  });

  it('keeps a history and finds the previous run of the same model to compare with', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nanochat-bench-')), 'history.jsonl');
    assert.equal(appendHistory(file, report), undefined);
    const second = { ...report, createdAt: new Date(Date.parse(report.createdAt) + 1000).toISOString() };
    const previous = appendHistory(file, second);
    assert.equal(previous?.createdAt, report.createdAt);
    fs.appendFileSync(file, '{"not": "a report"}\n');
    assert.equal(appendHistory(file, { ...second, model: { ...second.model, path: '/elsewhere.gguf' } }), undefined, 'other models and broken lines are skipped');
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  });

  it('npm run bench: one JSON object on stdout, and a one-line error for a bad model', async () => {
    const cli = ['--import', 'tsx', path.join(REPO_ROOT, 'src', 'cli', 'bench.ts')];
    const { stdout } = await run(process.execPath, [...cli, '--model', model, '--quick', '--json'], { cwd: REPO_ROOT, maxBuffer: 1e7 });
    assert.equal(stdout.trim().split('\n').length, 1, 'nothing but the report on stdout');
    assert.ok(benchReportSchema.safeParse(JSON.parse(stdout)).success);
    const bad = path.join(os.tmpdir(), `nanochat-bad-${process.pid}.gguf`);
    fs.writeFileSync(bad, Buffer.alloc(100));
    try {
      await assertOneLineFailure(run(process.execPath, [...cli, '--model', bad, '--json'], { cwd: REPO_ROOT }), /not a GGUF model/);
    } finally {
      fs.rmSync(bad, { force: true });
    }
  });
});
