import fs from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import { bundledCatalog, estimatedRamBytes, resolveModelSource, type CatalogModel } from '../core/modelFiles/catalog';
import { DownloadError, type DownloadProgress } from '../core/modelFiles/download';
import { ModelFileError, errorMessage } from '../core/errors';
import { checkModelFile, formatBytes } from '../core/modelFiles/ggufCheck';
import { COMMANDS, type Services } from './services';
import { abortOn } from './cancellation';
import { HF_TOKEN_SECRET, serverKeySecret } from './secrets';


/** The Hugging Face endpoint: HF_ENDPOINT (the variable huggingface_hub reads too, for mirrors), else huggingface.co. */
export function huggingFaceEndpoint(): string {
  return process.env.HF_ENDPOINT || 'https://huggingface.co';
}

/** Download, select, use-local, delete and token commands: the model manager's VS Code face. */
export function registerModelCommands(services: Services): vscode.Disposable[] {
  const { models, library, log, downloader } = services;

  /** Checks a file, registers it, selects it and loads it in the background. */
  const useModelFile = async (filePath: string): Promise<string | undefined> => {
    try {
      const info = await checkModelFile(filePath);
      await library.add(filePath, info);
      await library.touch(filePath);
      log.info(`Selected ${info.name} (${filePath}).`);
      await models.select(filePath);
      return filePath;
    } catch (err) {
      const message = err instanceof ModelFileError ? err.message : `Cannot use ${filePath}: ${errorMessage(err)}`;
      log.warn(message);
      void vscode.window.showErrorMessage(message);
      return undefined;
    }
  };

  const download = async (what: string): Promise<string | undefined> => {
    let source;
    try {
      source = resolveModelSource(what, huggingFaceEndpoint());
    } catch (err) {
      void vscode.window.showErrorMessage(errorMessage(err));
      return undefined;
    }
    const existing = path.join(downloader.modelsDir, source.fileName);
    if (fs.existsSync(existing)) return useModelFile(existing);
    log.info(`Downloading ${source.label} from ${source.url}`);
    try {
      const file = await vscode.window.withProgress({
        location: vscode.ProgressLocation.Notification, title: `Nanochat: ${source.label}`, cancellable: true,
      }, async (progress, token) => {
        const cancel = abortOn(token);
        let reported = 0;
        try {
          return await downloader.download({ url: source.url, fileName: source.fileName, sha256: source.sha256 }, {
            signal: cancel.signal,
            onProgress: (p) => {
              const percent = p.totalBytes ? (100 * p.receivedBytes) / p.totalBytes : 0;
              progress.report({ message: describeProgress(p), increment: Math.max(0, percent - reported) });
              reported = Math.max(reported, percent);
            },
          });
        } finally {
          cancel.dispose();
        }
      });
      return await useModelFile(file);
    } catch (err) {
      const message = errorMessage(err);
      if (err instanceof DownloadError && err.problem === 'cancelled') {
        void vscode.window.showInformationMessage(message);
      } else if (err instanceof DownloadError && err.problem === 'unauthorized') {
        void vscode.window.showErrorMessage(message, 'Set Hugging Face Token').then((c) => c && vscode.commands.executeCommand(COMMANDS.setToken));
      } else {
        void vscode.window.showErrorMessage(`Download failed: ${message}`, 'Retry').then((c) => c && vscode.commands.executeCommand(COMMANDS.download, what));
      }
      return undefined;
    }
  };

  const deleteModel = async (filePath: string, confirmed: boolean): Promise<boolean> => {
    const entry = library.find(filePath);
    const downloaded = path.dirname(filePath) === downloader.modelsDir;
    if (!confirmed) {
      const action = downloaded ? 'Delete' : 'Remove from List';
      const detail = downloaded ? `${filePath} (${formatBytes(entry?.sizeBytes ?? 0)}) will be deleted from disk.` : `${filePath} stays on disk; nanochat forgets it.`;
      const choice = await vscode.window.showWarningMessage(`${action} ${entry?.name ?? path.basename(filePath)}?`, { modal: true, detail }, action);
      if (choice !== action) return false;
    }
    if (models.model?.info.path === filePath || models.selectedPath === filePath) await models.unload('user');
    if (services.settings.current.model === filePath) await services.settings.update('model', '');
    if (downloaded) await fs.promises.rm(filePath, { force: true });
    await library.remove(filePath);
    log.info(`${downloaded ? 'Deleted' : 'Forgot'} ${filePath}.`);
    return true;
  };

  return [
    vscode.commands.registerCommand(COMMANDS.download, async (what?: string) => {
      if (typeof what === 'string') return download(what);
      const choice = await pickCatalogModel(services);
      return choice ? download(choice) : undefined;
    }),

    vscode.commands.registerCommand(COMMANDS.useLocal, async (filePath?: string) => {
      if (typeof filePath !== 'string') {
        const picked = await vscode.window.showOpenDialog({
          canSelectMany: false, openLabel: 'Use this model', title: 'Choose a GGUF model file',
          filters: { 'GGUF models': ['gguf'], 'All files': ['*'] },
        });
        if (!picked?.[0]) return undefined;
        filePath = picked[0].fsPath;
      }
      return useModelFile(filePath);
    }),

    vscode.commands.registerCommand(COMMANDS.deleteModel, async (filePath?: string, options?: { confirmed?: boolean }) => {
      if (typeof filePath !== 'string') {
        const picked = await vscode.window.showQuickPick(services.library.list().map((m) => ({ label: m.name, description: formatBytes(m.sizeBytes), detail: m.path })), { title: 'Nanochat: Delete Model' });
        if (!picked) return false;
        filePath = picked.detail;
      }
      return deleteModel(filePath, options?.confirmed === true);
    }),

    vscode.commands.registerCommand(COMMANDS.setToken, async () => {
      const token = await vscode.window.showInputBox({
        title: 'Hugging Face token', prompt: 'Needed only for gated models. Stored in VS Code\'s secret storage; leave empty to remove it.',
        password: true, ignoreFocusOut: true, placeHolder: 'hf_…',
        validateInput: (v) => (v && !/^hf_\w{10,}$/.test(v.trim()) ? 'A Hugging Face token starts with hf_' : undefined),
      });
      if (token === undefined) return;
      if (token.trim()) await services.context.secrets.store(HF_TOKEN_SECRET, token.trim());
      else await services.context.secrets.delete(HF_TOKEN_SECRET);
      void vscode.window.showInformationMessage(token.trim() ? 'Hugging Face token saved.' : 'Hugging Face token removed.');
    }),

    vscode.commands.registerCommand(COMMANDS.setServerKey, async (key?: string) => {
      const url = services.settings.current['server.url'];
      let origin: string;
      try { origin = new URL(url).origin; } catch {
        void vscode.window.showWarningMessage('Set nanochat.server.url first: the key is kept for that server only.', 'Open Settings')
          .then((c) => c && vscode.commands.executeCommand('workbench.action.openSettings', 'nanochat.server.url'));
        return false;
      }
      if (typeof key !== 'string') {
        const typed = await vscode.window.showInputBox({
          title: `API key for ${origin}`, prompt: 'Sent only to this server, as a Bearer token. Kept in VS Code\'s secret storage; leave empty to remove it.',
          password: true, ignoreFocusOut: true,
        });
        if (typed === undefined) return false;
        key = typed;
      }
      if (key.trim()) await services.context.secrets.store(serverKeySecret(origin), key.trim());
      else await services.context.secrets.delete(serverKeySecret(origin));
      log.info(`${key.trim() ? 'Saved' : 'Removed'} the API key for ${origin}.`); // never the key itself
      void services.server.refresh().catch(() => undefined);
      return true;
    }),

    vscode.commands.registerCommand(COMMANDS.select, () => services.settings.current.backend === 'server' ? selectServerModel(services) : selectModel(services, useModelFile, deleteModel)),
  ];
}

export function describeProgress(p: DownloadProgress): string {
  if (p.phase === 'fetching') return 'Fetching…';
  if (p.phase === 'verifying') return 'Verifying…';
  if (p.phase === 'done') return 'Done';
  if (p.phase === 'stopped') return 'Stopped';
  const percent = p.totalBytes ? `${Math.floor((100 * p.receivedBytes) / p.totalBytes)}% · ` : '';
  const left = p.secondsLeft !== undefined ? ` · ${formatDuration(p.secondsLeft)} left` : '';
  return `Downloading ${percent}${formatBytes(p.receivedBytes)}${p.totalBytes ? ` of ${formatBytes(p.totalBytes)}` : ''} · ${formatBytes(p.bytesPerSecond)}/s${left}`;
}

function formatDuration(seconds: number): string {
  if (seconds < 60) return `${Math.ceil(seconds)} s`;
  if (seconds < 3600) return `${Math.ceil(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

async function pickCatalogModel(services: Services): Promise<string | undefined> {
  const catalog = bundledCatalog();
  const installed = new Set(services.library.list().map((m) => path.basename(m.path)));
  type Item = vscode.QuickPickItem & { value?: string };
  const items: Item[] = catalog.models.map((m: CatalogModel) => ({
    label: `${installed.has(m.file) ? '$(check) ' : ''}${m.name}`,
    description: `${m.sizeExact ? '' : '~'}${formatBytes(m.sizeBytes)} · needs ~${formatBytes(estimatedRamBytes(m.sizeBytes))} RAM · ${m.goodFor}${m.id === catalog.defaultModel ? ' · recommended' : ''}`,
    detail: `${m.description} ${m.parameters} parameters, ${m.quantization}, ${m.license}.${installed.has(m.file) ? ' Installed.' : ''}`,
    value: m.id,
  }));
  items.push({ label: '', kind: vscode.QuickPickItemKind.Separator }, { label: '$(link) Any Hugging Face GGUF or URL…', value: '' });
  const choice = await vscode.window.showQuickPick(items, { title: 'Nanochat: Download Model', placeHolder: 'A small chat model that runs on this machine', matchOnDetail: true });
  if (!choice || choice.value === undefined) return undefined;
  if (choice.value) return choice.value;
  return vscode.window.showInputBox({
    title: 'Download a GGUF model', prompt: 'hf:owner/repo/file.gguf, or an https URL of a .gguf file',
    placeHolder: 'hf:bartowski/Qwen2.5-0.5B-Instruct-GGUF/Qwen2.5-0.5B-Instruct-Q4_K_M.gguf', ignoreFocusOut: true,
    validateInput: (v) => { try { resolveModelSource(v); return undefined; } catch (err) { return errorMessage(err); } },
  });
}

async function selectServerModel(services: Services): Promise<string | undefined> {
  const models = await services.server.refresh().catch((err: unknown) => {
    void vscode.window.showErrorMessage(errorMessage(err), 'Set Server API Key', 'Open Settings').then((c) => {
      if (c === 'Set Server API Key') void vscode.commands.executeCommand(COMMANDS.setServerKey);
      if (c === 'Open Settings') void vscode.commands.executeCommand('workbench.action.openSettings', 'nanochat.server');
    });
    return undefined;
  });
  if (!models) return undefined;
  const current = services.backend.selectedModel()?.id;
  const picked = await vscode.window.showQuickPick(models.map((m) => ({ label: `${m.id === current ? '$(check) ' : ''}${m.name}`, description: `${m.contextSize} tokens of context`, detail: m.id, id: m.id })),
    { title: `Nanochat: Select Model on ${services.settings.current['server.url']}` });
  if (!picked) return undefined;
  await services.backend.selectModel(picked.id);
  return picked.id;
}

async function selectModel(services: Services, use: (p: string) => Promise<string | undefined>, remove: (p: string, confirmed: boolean) => Promise<boolean>): Promise<unknown> {
  const current = services.models.selectedPath;
  const deleteButton = { iconPath: new vscode.ThemeIcon('trash'), tooltip: 'Delete or forget this model' };
  const revealButton = { iconPath: new vscode.ThemeIcon('folder-opened'), tooltip: 'Reveal in the file manager' };
  type Item = vscode.QuickPickItem & { run: () => Thenable<unknown> | unknown; path?: string };
  const pick = vscode.window.createQuickPick<Item>();
  const refresh = () => {
    const items: Item[] = services.library.list().map((m) => ({
      label: `${m.path === current ? '$(check) ' : ''}${m.name}`,
      description: `${formatBytes(m.sizeBytes)} · ${m.architecture}${m.lastUsed ? ` · used ${new Date(m.lastUsed).toLocaleDateString()}` : ''}`,
      detail: m.path, path: m.path, buttons: [revealButton, deleteButton],
      run: () => use(m.path),
    }));
    items.push(
      { label: '', kind: vscode.QuickPickItemKind.Separator, run: () => undefined },
      { label: '$(folder-opened) Use Local GGUF File…', run: () => vscode.commands.executeCommand(COMMANDS.useLocal) },
      { label: '$(cloud-download) Download Model…', run: () => vscode.commands.executeCommand(COMMANDS.download) },
    );
    pick.items = items;
  };
  pick.title = 'Nanochat: Select Model';
  pick.placeholder = 'Model to chat with';
  pick.matchOnDetail = true;
  refresh();
  return new Promise((resolve) => {
    pick.onDidTriggerItemButton(async (e) => {
      if (!e.item.path) return;
      if (e.button === revealButton) await vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(e.item.path));
      else if (await remove(e.item.path, false)) refresh();
    });
    pick.onDidAccept(() => { const item = pick.selectedItems[0]; pick.hide(); resolve(item?.run()); });
    pick.onDidHide(() => { pick.dispose(); resolve(undefined); });
    pick.show();
  });
}
