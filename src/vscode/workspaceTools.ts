import fs from 'node:fs/promises';
import path from 'node:path';
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
  writeFile: 'nanochat_writeFile',
} as const;

/** What the tools were asked to do, in order (the extension's API shows it; tests read it). */
export interface ToolActivity { tool: string; phase: 'prepare' | 'invoke'; input: unknown }

const roots = () => (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath);
const relative = (file: string) => vscode.workspace.asRelativePath(file, (vscode.workspace.workspaceFolders?.length ?? 0) > 1);
const result = (text: string) => new vscode.LanguageModelToolResult([new vscode.LanguageModelTextPart(text)]);

/** A path inside the workspace also after links are followed (a link in the workspace may point out of it). */
async function real(file: string): Promise<string> {
  const target = await fs.realpath(file).catch(() => file);
  if (target === file) return file;
  const realRoots = await Promise.all(roots().map((r) => fs.realpath(r).catch(() => r)));
  resolveInWorkspace(realRoots, target);
  return file;
}

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
interface WriteInput { path: string; content: string }

const MAX_WRITE_CHARS = 200_000;

function record(activity: ToolActivity[], entry: ToolActivity): void {
  activity.push(entry);
  if (activity.length > 100) activity.splice(0, activity.length - 100);
}

function tool<T>(name: string, activity: ToolActivity[], invocationMessage: (input: T) => string, run: (input: T, token: vscode.CancellationToken) => Promise<string>,
  confirm?: (input: T) => Promise<vscode.LanguageModelToolConfirmationMessages>): vscode.LanguageModelTool<T> {
  return {
    async prepareInvocation(options) {
      record(activity, { tool: name, phase: 'prepare', input: options.input });
      return { invocationMessage: invocationMessage(options.input), ...(confirm ? { confirmationMessages: await confirm(options.input) } : {}) };
    },
    async invoke(options, token) {
      record(activity, { tool: name, phase: 'invoke', input: options.input });
      try {
        return result(await run(options.input, token));
      } catch (err) {
        // The model reads the failure and can try again; it is not an error of the extension.
        return result(`Error: ${errorMessage(err)}`);
      }
    },
  };
}

export function registerWorkspaceTools(activity: ToolActivity[] = []): vscode.Disposable[] {
  return [
    vscode.lm.registerTool<ReadInput>(WORKSPACE_TOOLS.readFile, tool(WORKSPACE_TOOLS.readFile, activity, (i) => `Reading ${i.path}`, async (input) => {
      if (typeof input?.path !== 'string') throw new NanochatError('Give the file\'s path.');
      const file = await real(resolveInWorkspace(roots(), input.path));
      const read = readRange(await fileText(file), input.startLine, input.endLine);
      const header = `${relative(file)}, lines ${read.from}-${read.to} of ${read.total}${read.truncated ? ` (more: read from line ${read.to + 1})` : ''}:`;
      return `${header}\n${read.text}`;
    })),

    vscode.lm.registerTool<ListInput>(WORKSPACE_TOOLS.listFolder, tool(WORKSPACE_TOOLS.listFolder, activity, (i) => `Listing ${i?.path || 'the workspace'}`, async (input) => {
      const folder = await real(resolveInWorkspace(roots(), input?.path || '.'));
      const entries = (await fs.readdir(folder, { withFileTypes: true }))
        .filter((e) => !e.name.startsWith('.git') && e.name !== 'node_modules')
        .sort((a, b) => Number(b.isDirectory()) - Number(a.isDirectory()) || a.name.localeCompare(b.name));
      const shown = entries.slice(0, TOOL_LIMITS.listEntries).map((e) => (e.isDirectory() ? `${e.name}/` : e.name));
      const more = entries.length > shown.length ? `\n… and ${entries.length - shown.length} more` : '';
      const name = roots().includes(folder) ? (roots().length > 1 ? path.basename(folder) : '.') : relative(folder);
      return `${name} (${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}):\n${shown.join('\n')}${more}`;
    })),

    vscode.lm.registerTool<FindInput>(WORKSPACE_TOOLS.findFiles, tool(WORKSPACE_TOOLS.findFiles, activity, (i) => `Finding ${i.pattern}`, async (input, token) => {
      if (typeof input?.pattern !== 'string' || !input.pattern.trim()) throw new NanochatError('Give a glob pattern, such as **/*.py.');
      const files = await vscode.workspace.findFiles(input.pattern.trim(), '**/{node_modules,.git}/**', TOOL_LIMITS.findResults + 1, token);
      const shown = files.slice(0, TOOL_LIMITS.findResults).map((f) => relative(f.fsPath)).sort();
      return shown.length ? `${shown.join('\n')}${files.length > shown.length ? '\n… and more' : ''}` : `No file matches ${input.pattern}.`;
    })),

    vscode.lm.registerTool<SearchInput>(WORKSPACE_TOOLS.searchText, tool(WORKSPACE_TOOLS.searchText, activity, (i) => `Searching for ${i.query}`, async (input, token) => {
      if (typeof input?.query !== 'string' || !input.query) throw new NanochatError('Give the text to search for.');
      if (input.isRegexp) { try { new RegExp(input.query); } catch (err) { throw new NanochatError(`Not a valid regular expression: ${errorMessage(err)}`); } }
      const files = await vscode.workspace.findFiles(input.include?.trim() || '**/*', '**/{node_modules,.git,dist,out}/**', TOOL_LIMITS.searchFiles, token);
      const lines: string[] = [];
      for (const file of files.sort((a, b) => a.fsPath.localeCompare(b.fsPath))) {
        if (token.isCancellationRequested || lines.length >= TOOL_LIMITS.searchMatches) break;
        let text: string;
        try {
          if ((await fs.stat(file.fsPath)).size > TOOL_LIMITS.searchFileBytes) continue;
          text = await fileText(await real(file.fsPath));
        } catch { continue; }
        for (const m of searchText(text, input.query, !!input.isRegexp, TOOL_LIMITS.searchMatches - lines.length)) lines.push(`${relative(file.fsPath)}:${m.line}: ${m.text}`);
      }
      return lines.length ? lines.join('\n') : `No match for ${input.query}.`;
    })),

    // The one tool that changes the workspace: VS Code asks the user first (its confirmation, shown in the chat).
    vscode.lm.registerTool<WriteInput>(WORKSPACE_TOOLS.writeFile, tool(WORKSPACE_TOOLS.writeFile, activity, (i) => `Writing ${i.path}`, async (input) => {
      if (typeof input?.path !== 'string' || typeof input.content !== 'string') throw new NanochatError('Give the file\'s path and its whole new content.');
      if (!vscode.workspace.isTrusted) throw new NanochatError('This workspace is not trusted (Restricted Mode): nanochat does not write to it.');
      if (input.content.length > MAX_WRITE_CHARS) throw new NanochatError(`The content is ${input.content.length} characters; at most ${MAX_WRITE_CHARS} are written.`);
      const file = await real(resolveInWorkspace(roots(), input.path));
      const stat = await fs.stat(file).catch(() => undefined);
      if (stat?.isDirectory()) throw new NanochatError(`${relative(file) || '.'} is a folder.`);
      await vscode.workspace.fs.writeFile(vscode.Uri.file(file), Buffer.from(input.content, 'utf8'));
      return `Wrote ${input.content.length} characters to ${relative(file)}${stat ? ' (replaced)' : ' (new file)'}.`;
    }, async (input) => {
      const shown = typeof input?.path === 'string' ? input.path : '(no path)';
      const exists = typeof input?.path === 'string' && await fs.stat(resolveInWorkspace(roots(), input.path)).then(() => true, () => false).catch(() => false);
      const length = typeof input?.content === 'string' ? input.content.length : 0;
      return {
        title: exists ? 'Replace a file?' : 'Create a file?',
        message: new vscode.MarkdownString(`@nanochat wants to write ${length} characters to \`${shown}\`${exists ? ', replacing what is there' : ''}.`),
      };
    })),
  ];
}
