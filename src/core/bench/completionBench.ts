import { CompletionEngine } from '../completion/completionEngine';
import type { CompletionRequest } from '../completion/fim';
import { importNodeLlamaCpp } from '../engine/llama';
import { defaultSettings, type Settings } from '../settings';
import { percentile, round } from './stats';

/** The file the scripted typing happens in: a realistic module with code before and after the cursor. */
const BEFORE = `"""Inventory utilities: parsing, pricing and reports."""
from dataclasses import dataclass
from typing import Iterable


@dataclass
class Item:
    name: str
    price: float
    quantity: int = 0


def parse_line(line: str) -> Item:
    name, price, quantity = line.split(",")
    return Item(name.strip(), float(price), int(quantity))


def total_value(items: Iterable[Item]) -> float:
`;
/** What the scripted user types, one character per keystroke. */
const TYPED = `    return sum(item.price * item.quantity for item in items)
`;
const AFTER = `

def cheapest(items: Iterable[Item]) -> Item:
    return min(items, key=lambda item: item.price)


def report(items: list[Item]) -> str:
    lines = [f"{item.name}: {item.quantity} x {item.price:.2f}" for item in items]
    lines.append(f"total: {total_value(items):.2f}")
    return "\\n".join(lines)
`;
const OTHER_FILE = { path: 'inventory/cli.py', text: 'import sys\nfrom inventory.items import parse_line, report\n\n\ndef main() -> None:\n    items = [parse_line(line) for line in sys.stdin]\n    print(report(items))\n' };

export interface CompletionBenchReport {
  model: string;
  threads: number;
  keystrokes: number;
  /** Keystrokes after the first, with the KV cache and the suggestion cache as typing leaves them. */
  warm: { p50Ms: number; p95Ms: number; cacheHits: number };
  /** A brand-new prompt each time (no KV cache, no suggestion cache). */
  cold: { p50Ms: number; promptTokens: number };
  /** Median prompt tokens evaluated per keystroke that reached the model (the rest came from the KV cache). */
  evaluatedTokensPerKeystroke: number;
  /** Median tokens generated per suggestion (the bench asks for completions.maxTokens, with no line breaks). */
  suggestionTokens: number;
  goal: { warmP50Ms: number; met: boolean };
}

/**
 * Completion latency over a scripted typing sequence: a function body typed one character at a time
 * into a realistic file, a request at each keystroke as the editor makes them (the previous one is
 * finished, not cancelled, so each latency is whole). Random weights write gibberish, so suggestions
 * are held to `suggestionTokens` tokens by barring line breaks: the figure is the cost of a suggestion
 * of that length. Cold: the same prompt with every cache cleared.
 */
export async function runCompletionBenchmark(options: { modelPath: string; threads?: number; suggestionTokens?: number; keystrokes?: number; onProgress?: (step: string) => void }): Promise<CompletionBenchReport> {
  const suggestionTokens = options.suggestionTokens ?? 32;
  const settings: Settings = {
    ...defaultSettings(), model: '', 'completions.model': options.modelPath, 'completions.maxTokens': suggestionTokens,
    threads: options.threads ?? 0, gpu: 'off', idleUnloadMinutes: 0,
  };
  const engine = new CompletionEngine({ settings: () => settings });
  try {
    options.onProgress?.('loading the model');
    const lease = await engine.models.acquire();
    const loaded = lease.model;
    lease.dispose();
    const { TokenBias } = await importNodeLlamaCpp();
    // No line breaks: every suggestion runs to suggestionTokens (a single-line suggestion would stop at one).
    const barred = new TokenBias(loaded.model.tokenizer);
    for (const token of loaded.model.iterateAllTokens()) if (loaded.model.detokenize([token], true).includes('\n')) barred.set(token, 'never');
    engine.tokenBias = () => barred;
    const request = (typed: string): CompletionRequest => ({ prefix: BEFORE + typed, suffix: AFTER, path: 'inventory/items.py', repo: 'inventory', extra: [OTHER_FILE] });

    const keystrokes = Math.min(options.keystrokes ?? 40, TYPED.length);
    const warm: number[] = [];
    const evaluated: number[] = [];
    const generated: number[] = [];
    let cacheHits = 0;
    for (let i = 0; i <= keystrokes; i++) {
      options.onProgress?.(`keystroke ${i}/${keystrokes}`);
      const started = performance.now();
      const result = await engine.complete('bench', request(TYPED.slice(0, i)));
      const ms = performance.now() - started;
      if (i === 0 || !result) continue;
      warm.push(ms);
      if (result.cached) { cacheHits++; continue; }
      evaluated.push(result.evaluatedTokens);
      generated.push(result.generatedTokens);
    }

    const cold: number[] = [];
    let coldPrompt = 0;
    for (let i = 0; i < 3; i++) {
      options.onProgress?.(`cold request ${i + 1}/3`);
      engine.cache.clear();
      engine.models.model?.sequences.clear();
      const started = performance.now();
      const result = await engine.complete('bench', request(TYPED.slice(0, 12)));
      cold.push(performance.now() - started);
      coldPrompt = result?.promptTokens ?? 0;
    }
    const p50 = round(percentile(warm, 0.5));
    return {
      model: loaded.info.name, threads: loaded.info.threads, keystrokes,
      warm: { p50Ms: p50, p95Ms: round(percentile(warm, 0.95)), cacheHits },
      cold: { p50Ms: round(percentile(cold, 0.5)), promptTokens: coldPrompt },
      evaluatedTokensPerKeystroke: round(percentile(evaluated, 0.5)),
      suggestionTokens: round(percentile(generated, 0.5)),
      goal: { warmP50Ms: 300, met: p50 < 300 },
    };
  } finally {
    await engine.dispose();
  }
}
