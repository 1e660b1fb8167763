import fs from 'node:fs/promises';
import * as vscode from 'vscode';
import { TOOL_LIMITS, readRange, resolveInWorkspace, searchText } from '../core/agent/workspace';
import { NanochatError, errorMessage } from '../core/errors';

/**
 * nanochat's own workspace tools (contributes.languageModelTools): without Copilot no tool reads the
 * workspace, so @nanochat brings these, usable by any participant. Read-only, bounded outputs,
 * paths inside the workspace only.
 */
export const WORKSPACE_TOOLS = {
  readFile: 'nanochat_readFile',
  listFolder: 'nanochat_listFolder',
  findFiles: 'nanochat_findFiles',
  searchText: 'nanochat_searchText',
} as const;

const roots = () => (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath);
const relative = (file: string) => vscode.workspace.asRelativePath(file, (vscode.workspace.workspaceFolders?.length ?? 0) > 1);
const result = (text: string) => new vscode.LanguageModelToolResult([new vscode.LanguageModelTextPart(text)]);

/** Text of a file: the editor's buffer when it is open (unsaved edits included), else the disk's. */
async function fileText(file: string): Promise<string> {
  const open = vscode.workspace.textDocuments.find((d) => d.uri.scheme === 'file' && d.uri.fsPath === file);
  if (open) return open.getText();
  const stat = await fs.stat(file);
  if (stat.isDirectory()) throw new NanochatError(`${relative(file)} is a folder; use ${WORKSPACE_TOOLS.listFolder}.`);
  if (stat.size > 5_000_000) throw new NanochatError(`${relative(file)} is ${Math.round(stat.size / 1e6)} MB: too big to read.`);
  const bytes = await fs.readFile(file);
  if (bytes.subarray(0, 8000).includes(0)) throw new NanochatError(`${relative(file)} is a binary file.`);
  return bytes.toString('utf8');
}

interface ReadInput { path: string; startLine?: number; endLine?: number }
interface ListInput { path?: string }
interface FindInput { pattern: string }
interface SearchInput { query: string; isRegexp?: boolean; include?: string }

function tool<T>(invocationMessage: (input: T) => string, run: (input: T, token: vscode.CancellationToken) => Promise<string>): vscode.LanguageModelTool<T> {
  return {
    prepareInvocation: (options) => ({ invocationMessage: invocationMessage(options.input) }),
    async invoke(options, token) {
      try {
        return result(await run(options.input, token));
      } catch (err) {
        // The model reads the failure and can try again; it is not an error of the extension.
        return result(`Error: ${errorMessage(err)}`);
      }
    },
  };
}

export function registerWorkspaceTools(): vscode.Disposable[] {
  return [
    vscode.lm.registerTool<ReadInput>(WORKSPACE_TOOLS.readFile, tool((i) => `Reading ${i.path}`, async (input) => {
      if (typeof input?.path !== 'string') throw new NanochatError('Give the file\'s path.');
      const file = resolveInWorkspace(roots(), input.path);
      const read = readRange(await fileText(file), input.startLine, input.endLine);
      const header = `${relative(file)}, lines ${read.from}-${read.to} of ${read.total}${read.truncated ? ` (more: read from line ${read.to + 1})` : ''}:`;
      return `${header}\n${read.text}`;
    })),

    vscode.lm.registerTool<ListInput>(WORKSPACE_TOOLS.listFolder, tool((i) => `Listing ${i?.path || 'the workspace'}`, async (input) => {
      const folder = resolveInWorkspace(roots(), input?.path || '.');
      const entries = (await fs.readdir(folder, { withFileTypes: true }))
        .filter((e) => !e.name.startsWith('.git') && e.name !== 'node_modules')
        .sort((a, b) => Number(b.isDirectory()) - Number(a.isDirectory()) || a.name.localeCompare(b.name));
      const shown = entries.slice(0, TOOL_LIMITS.listEntries).map((e) => (e.isDirectory() ? `${e.name}/` : e.name));
      const more = entries.length > shown.length ? `\n… and ${entries.length - shown.length} more` : '';
      return `${relative(folder) || '.'} (${entries.length} entries):\n${shown.join('\n')}${more}`;
    })),

    vscode.lm.registerTool<FindInput>(WORKSPACE_TOOLS.findFiles, tool((i) => `Finding ${i.pattern}`, async (input, token) => {
      if (typeof input?.pattern !== 'string' || !input.pattern.trim()) throw new NanochatError('Give a glob pattern, such as **/*.py.');
      const files = await vscode.workspace.findFiles(input.pattern.trim(), '**/{node_modules,.git}/**', TOOL_LIMITS.findResults + 1, token);
      const shown = files.slice(0, TOOL_LIMITS.findResults).map((f) => relative(f.fsPath)).sort();
      return shown.length ? `${shown.join('\n')}${files.length > shown.length ? '\n… and more' : ''}` : `No file matches ${input.pattern}.`;
    })),

    vscode.lm.registerTool<SearchInput>(WORKSPACE_TOOLS.searchText, tool((i) => `Searching for ${i.query}`, async (input, token) => {
      if (typeof input?.query !== 'string' || !input.query) throw new NanochatError('Give the text to search for.');
      if (input.isRegexp) { try { new RegExp(input.query); } catch (err) { throw new NanochatError(`Not a valid regular expression: ${errorMessage(err)}`); } }
      const files = await vscode.workspace.findFiles(input.include?.trim() || '**/*', '**/{node_modules,.git,dist,out}/**', TOOL_LIMITS.searchFiles, token);
      const lines: string[] = [];
      for (const file of files.sort((a, b) => a.fsPath.localeCompare(b.fsPath))) {
        if (token.isCancellationRequested || lines.length >= TOOL_LIMITS.searchMatches) break;
        let text: string;
        try {
          if ((await fs.stat(file.fsPath)).size > TOOL_LIMITS.searchFileBytes) continue;
          text = await fileText(file.fsPath);
        } catch { continue; }
        for (const m of searchText(text, input.query, !!input.isRegexp, TOOL_LIMITS.searchMatches - lines.length)) lines.push(`${relative(file.fsPath)}:${m.line}: ${m.text}`);
      }
      return lines.length ? lines.join('\n') : `No match for ${input.query}.`;
    })),
  ];
}
