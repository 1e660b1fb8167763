import { benchReportSchema, type BenchReport } from '../../src/core/bench/schema';

/**
 * A report as `npm run bench -- --quick --json` printed it for stories260K on the 2-core CI machine
 * (path anonymised, activation time added): input for the report's renderers, which must not need
 * a model to be tested.
 */
export function fixtureReport(changes: (r: BenchReport) => void = () => {}): BenchReport {
  const report = benchReportSchema.parse(structuredClone(FIXTURE));
  changes(report);
  return benchReportSchema.parse(report);
}

const FIXTURE = {
  "version": 1,
  "createdAt": "2026-11-22T08:46:50.034Z",
  "model": {
    "path": "/models/stories260K.gguf",
    "name": "stories260K",
    "architecture": "llama",
    "parameters": 292800
  },
  "quick": true,
  "runs": 2,
  "load": {
    "importMs": 1127.5,
    "llamaMs": 1693.5,
    "modelMs": 40.2,
    "contextMs": 55.4,
    "totalMs": 2916.6
  },
  "firstTokenMs": {
    "short": {
      "median": 12,
      "p95": 12
    },
    "long": {
      "median": 2310,
      "p95": 2310
    }
  },
  "promptTokens": {
    "short": 34,
    "long": 935
  },
  "promptTokensPerSecond": {
    "median": 406.2,
    "p95": 406.2
  },
  "generationTokensPerSecond": {
    "median": 626.3,
    "p95": 626.3
  },
  "multiTurn": {
    "turns": 3,
    "withReuseMs": 253,
    "withoutReuseMs": 458,
    "speedup": 1.8,
    "firstTokenMsByTurn": [
      61,
      168,
      253
    ]
  },
  "cancelLatencyMs": {
    "median": 1.3,
    "p95": 1.3
  },
  "latencyMs": {
    "p50": 22,
    "p95": 25,
    "p99": 25
  },
  "concurrentLatencyMs": {
    "p50": 164.2,
    "p95": 203.5,
    "p99": 203.5,
    "requests": 10
  },
  "tokenizer": {
    "bytes": 200070,
    "tokens": 175489,
    "jsTokensPerSecond": 731229,
    "llamaTokensPerSecond": 3513677,
    "ratio": 0.2
  },
  "memory": {
    "rssBeforeBytes": 158588928,
    "rssAfterBytes": 164962304,
    "modelBytes": 1185376
  },
  "threads": [
    {
      "threads": 1,
      "tokensPerSecond": 1197.5,
      "underLoadTokensPerSecond": 547.4
    },
    {
      "threads": 2,
      "tokensPerSecond": 308.7,
      "underLoadTokensPerSecond": 17.5
    }
  ],
  "defaultThreads": 1,
  "defaultThreadsWithin80PercentUnderLoad": true,
  "machine": {
    "cpu": "Intel(R) Xeon(R) Processor",
    "cores": 2,
    "backend": "cpu",
    "bandwidthBytesPerSecond": 14794858463,
    "node": "v20.20.2"
  },
  "bandwidthUtilisation": 0.0496,
  "extension": {
    "activationMs": 31.4
  }
};
