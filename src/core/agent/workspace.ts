import path from 'node:path';
import { NanochatError } from '../errors';
import type { ToolDefinition } from '../chat/tools';

/** Limits that keep a tool's output within a small model's context. */
export const TOOL_LIMITS = { readLines: 200, readChars: 12_000, listEntries: 200, findResults: 100, searchMatches: 50, searchFiles: 2_000, searchFileBytes: 1_000_000 } as const;

/**
 * A path the model gave, as an absolute path inside one of the workspace folders. Relative paths are
 * taken from the first folder (or the folder they name); anything that leaves the workspace ("..",
 * an absolute path elsewhere) is refused.
 */
export function resolveInWorkspace(roots: readonly string[], given: string): string {
  if (roots.length === 0) throw new NanochatError('No folder is open: the workspace tools read only inside the workspace.');
  const cleaned = given.trim().replace(/^["']|["']$/g, '') || '.';
  const candidates: string[] = [];
  // In a multi-root workspace, a relative path may start with a folder's name ("app/src/x.ts"), as VS Code writes them.
  if (roots.length > 1 && !path.isAbsolute(cleaned)) {
    for (const root of roots) {
      const name = path.basename(root);
      if (cleaned === name || cleaned.startsWith(`${name}/`)) candidates.push(path.resolve(path.dirname(root), cleaned));
    }
  }
  candidates.push(...(path.isAbsolute(cleaned) ? [path.resolve(cleaned)] : roots.map((root) => path.resolve(root, cleaned))));
  for (const candidate of candidates) {
    if (roots.some((root) => candidate === root || candidate.startsWith(root.endsWith(path.sep) ? root : root + path.sep))) return candidate;
  }
  throw new NanochatError(`${given} is outside the workspace; the workspace tools read only inside it.`);
}

/** Lines `start`–`end` (1-based, inclusive) of a text, numbered, within the read limits. */
export function readRange(text: string, start?: number, end?: number): { text: string; from: number; to: number; total: number; truncated: boolean } {
  const lines = text.split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  const total = lines.length;
  const from = Math.min(Math.max(1, Math.floor(start ?? 1)), Math.max(1, total));
  const wanted = end === undefined ? total : Math.max(from, Math.min(total, Math.floor(end)));
  let to = Math.min(wanted, from + TOOL_LIMITS.readLines - 1);
  let body = lines.slice(from - 1, to).join('\n');
  let truncated = to < wanted;
  if (body.length > TOOL_LIMITS.readChars) {
    body = body.slice(0, TOOL_LIMITS.readChars);
    to = from + body.split('\n').length - 1;
    truncated = true;
  }
  return { text: body, from, to, total, truncated };
}

/** Lines of `text` that match, as `line: text`, at most `limit`. */
export function searchText(text: string, query: string, isRegexp: boolean, limit: number): Array<{ line: number; text: string }> {
  const matcher = isRegexp ? new RegExp(query, 'i') : undefined;
  const needle = query.toLowerCase();
  const found: Array<{ line: number; text: string }> = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length && found.length < limit; i++) {
    const line = lines[i];
    if (matcher ? matcher.test(line) : line.toLowerCase().includes(needle)) found.push({ line: i + 1, text: line.trim().slice(0, 200) });
  }
  return found;
}

/** A tool as VS Code describes it, with where it comes from. */
export interface AgentTool extends ToolDefinition { tags?: readonly string[]; own: boolean }

/** Rough tokens of a tool's schema in a prompt (its JSON, about 3.5 characters a token). */
export function toolCost(tool: ToolDefinition): number {
  return Math.ceil(JSON.stringify({ name: tool.name, description: tool.description, parameters: tool.parameters }).length / 3.5);
}

/**
 * The tools offered to the model for one request, small enough for its context: nanochat's own
 * workspace tools and the ones the user referenced (#tool) always; then others by how many of the
 * request's words their name and description share, while the schemas fit `budgetTokens`. The result
 * is sorted by name, so the same selection gives a byte-identical tools preamble (its KV cache is reused).
 */
export function selectTools(all: readonly AgentTool[], prompt: string, referenced: readonly string[], budgetTokens: number): AgentTool[] {
  const words = new Set(prompt.toLowerCase().match(/[a-z][a-z0-9]{2,}/g) ?? []);
  const score = (t: AgentTool) => {
    const text = `${t.name} ${t.description ?? ''} ${(t.tags ?? []).join(' ')}`.toLowerCase().replace(/[_-]/g, ' ');
    return [...words].filter((w) => text.includes(w)).length;
  };
  const chosen = all.filter((t) => t.own || referenced.includes(t.name));
  let used = chosen.reduce((n, t) => n + toolCost(t), 0);
  const rest = all.filter((t) => !chosen.includes(t)).map((t) => ({ t, s: score(t) })).filter((x) => x.s > 0)
    .sort((a, b) => b.s - a.s || a.t.name.localeCompare(b.t.name));
  for (const { t } of rest) {
    const cost = toolCost(t);
    if (used + cost > budgetTokens) continue;
    chosen.push(t);
    used += cost;
  }
  return chosen.sort((a, b) => a.name.localeCompare(b.name));
}
