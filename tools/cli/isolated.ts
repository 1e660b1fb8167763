import { spawn } from 'node:child_process';
import fs from 'node:fs';

/**
 * llama.cpp prints some warnings straight to the process's stdout, where JS cannot filter them. With
 * --json a benchmark therefore runs in a child process whose stdout goes to stderr, and the report
 * comes back on a pipe of its own: stdout holds exactly one JSON object.
 */
export function runIsolated(): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
      env: { ...process.env, NANOCHAT_BENCH_REPORT_FD: '3' }, stdio: ['ignore', 'pipe', 'inherit', 'pipe'],
    });
    child.stdout!.pipe(process.stderr);
    let report = '';
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (d) => { report += d; });
    child.on('close', (code) => {
      if (code === 0 && report) process.stdout.write(report);
      resolve(code ?? 1);
    });
  });
}

/** In the isolated child: whether this run must re-launch itself isolated first. */
export function needsIsolation(): boolean {
  return process.argv.includes('--json') && !process.env.NANOCHAT_BENCH_REPORT_FD;
}

/** Writes the JSON report where the parent reads it (fd 3), else to stdout. */
export function writeReport(report: unknown): void {
  const fd = Number(process.env.NANOCHAT_BENCH_REPORT_FD);
  fs.writeSync(Number.isInteger(fd) ? fd : 1, JSON.stringify(report) + '\n');
}
