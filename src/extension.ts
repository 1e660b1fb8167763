import * as vscode from 'vscode';
import path from 'node:path';
import { EmbeddedBackend } from './core/chat/backend';
import { BackendSwitch } from './core/chat/backendSwitch';
import { ServerBackend } from './core/server/serverBackend';
import { ChatEngine } from './core/chat/engine';
import { configureLlama, disposeLlamas } from './core/engine/llama';
import { trackBlocksAndGc } from './core/eventLoop';
import { PromptStates } from './core/engine/promptStates';
import { ConversationStore } from './core/chat/conversations';
import { Downloader } from './core/modelFiles/download';
import { ModelLibrary } from './core/modelFiles/library';
import { ModelManager } from './core/engine/models';
import { TokenCounter } from './core/tokens/tokenCounter';
import { CompletionEngine } from './core/completion/completionEngine';
import { Benchmarks } from './vscode/bench';
import { registerCommands } from './vscode/commands';
import { offerMachineRebuild } from './vscode/machineBuildOffer';
import { registerInlineCompletions } from './vscode/completions';
import { registerWorkspaceTools, type ToolActivity } from './vscode/workspaceTools';
import { registerLanguageModelProvider } from './vscode/lmProvider';
import { huggingFaceEndpoint, registerModelCommands } from './vscode/modelCommands';
import { HF_TOKEN_SECRET, serverKeySecret } from './vscode/secrets';
import { createLog } from './vscode/log';
import { ChatPanel } from './vscode/panel';
import { registerParticipant } from './vscode/participant';
import { COMMANDS, type Services } from './vscode/services';
import { SettingsSource } from './vscode/settings';
import { SelectionTokenCount, StatusBar } from './vscode/statusBar';

/** Wires the core services to the VS Code surfaces. Nothing heavy happens here: llama.cpp loads on first use. */
export function activate(context: vscode.ExtensionContext) {
  const started = performance.now();
  const startedCpu = process.cpuUsage();
  const { channel, logger } = createLog();
  const settings = new SettingsSource(logger);
  configureLlama({ memory: context.globalState, machineBuilds: path.join(context.globalStorageUri.fsPath, 'machine-builds'), onStaleMachineBuild: () => offerMachineRebuild(context.globalState, logger), compileCache: path.join(context.globalStorageUri.fsPath, 'compile-cache'), importOrder: path.join(context.extensionUri.fsPath, 'dist', 'node-llama-cpp-modules.json') });
  const models = new ModelManager({
    settings: () => settings.current, log: logger, persistSelection: (modelPath) => settings.update('model', modelPath),
    chatFormat: { workerScript: path.join(context.extensionUri.fsPath, 'dist', 'chatFormatWorker.js'), cache: context.globalState },
  });
  // Long preambles (system prompt, tool schemas) are kept on disk, so the first reply after a restart skips them.
  const chat = new ChatEngine(models, () => settings.current, logger, new PromptStates({ dir: path.join(context.globalStorageUri.fsPath, 'prompt-states'), log: logger }));
  const library = new ModelLibrary(context.globalState);
  const tokens = new TokenCounter({ models, log: logger, workerScript: path.join(context.extensionUri.fsPath, 'dist', 'tokenWorker.js') });
  const downloader = new Downloader({
    modelsDir: () => settings.current.modelsFolder || path.join(context.globalStorageUri.fsPath, 'models'),
    log: logger,
    fetch: globalThis.fetch, // VS Code's: it applies the editor's proxy settings
    token: async () => context.secrets.get(HF_TOKEN_SECRET),
    tokenHosts: [new URL(huggingFaceEndpoint()).hostname],
  });
  const embedded = new EmbeddedBackend({ models, chat, tokens, library, settings: () => settings.current, log: logger });
  const server = new ServerBackend({
    settings: () => settings.current, log: logger,
    fetch: globalThis.fetch, // VS Code's: it applies the editor's proxy settings
    apiKey: (origin) => Promise.resolve(context.secrets.get(serverKeySecret(origin))),
    persistModel: (id) => settings.update('server.model', id),
  });
  const backend = new BackendSwitch(embedded, server, () => settings.current);
  // Inline completions: their own model manager and context, so chat and completions keep their caches.
  const completions = new CompletionEngine({
    settings: () => settings.current, log: logger,
    chatFormat: { workerScript: path.join(context.extensionUri.fsPath, 'dist', 'chatFormatWorker.js'), cache: context.globalState },
    infill: (request, options, signal) => server.infill(request, options, signal),
  });
  const services: Services = { context, settings, log: logger, logChannel: channel, models, backend, server, library, downloader, tokens };

  const bench = new Benchmarks(services);
  const toolActivity: ToolActivity[] = [];
  const participant = registerParticipant(services, bench);
  const statusBar = new StatusBar(services);
  const panel = new ChatPanel(services, new ConversationStore(path.join(context.globalStorageUri.fsPath, 'conversations'), context.globalState, logger));
  const selectionTokens = new SelectionTokenCount(services);
  context.subscriptions.push(
    channel, settings, library, bench, participant, statusBar, panel, selectionTokens,
    vscode.commands.registerCommand(COMMANDS.openPanel, () => { panel.show(); }),
    registerLanguageModelProvider(services),
    ...registerCommands(services),
    ...registerModelCommands(services),
    ...registerInlineCompletions(services, completions),
    ...registerWorkspaceTools(toolActivity),
    settings.onDidChange(() => {
      models.onSettingsChanged();
      backend.onSettingsChanged();
      if (settings.current.backend === 'server') server.ensureConnected(); // failures show in the state
    }),
    models.onDidChangeState((s) => { if (s.kind === 'ready') void library.add(s.info.path, s.info).catch(() => undefined); }),
  );
  // Native memory goes in deactivate(), which VS Code awaits: sequences and contexts, models, the
  // tokenizer worker, then the llama.cpp instances.
  if (settings.current.backend === 'server') server.ensureConnected();
  core = async () => {
    backend.dispose();
    embedded.dispose();
    server.dispose();
    downloader.dispose();
    chat.dispose();
    await tokens.dispose();
    await completions.dispose();
    await models.dispose();
    await disposeLlamas();
  };
  const modelSelected = () => void vscode.commands.executeCommand('setContext', 'nanochat.modelSelected', Boolean(models.selectedPath));
  modelSelected();
  context.subscriptions.push(settings.onDidChange(modelSelected));
  void offerWalkthrough(context, models);
  bench.activationMs = performance.now() - started;
  logger.info(`nanochat activated in ${Math.round(bench.activationMs)} ms.`);
  // Warm start: the selected model loads in the background (off the event loop where it can be), so
  // the first request finds it ready; the log and the benchmark report show how long that took.
  if (settings.current.loadOnStartup && settings.current.backend === 'embedded' && models.selectedPath) {
    setImmediate(() => {
      // Whose the start's blocks were: the garbage collector's, the scheduler's (the editor starting on
      // the same cores), or the code's own. Told half a second after the model is ready.
      const blocks = trackBlocksAndGc();
      models.load().then(() => {
        bench.readyMs = performance.now() - started;
        const cpu = process.cpuUsage(startedCpu);
        bench.startupCpuMs = (cpu.user + cpu.system) / 1000;
        logger.info(`Model ready ${Math.round(bench.readyMs)} ms after activation began (the extension host used ${Math.round(bench.startupCpuMs)} ms of CPU meanwhile).`);
        void blocks.stop().then((f) => {
          bench.startupBlocks = f;
          logger.info(`The start's longest event-loop block, ${Math.round(f.longestMs)} ms: ${Math.round(f.longestLessGcMs)} ms less garbage collection (longest collection ${Math.round(f.longestGcMs)} ms), ${Math.round(f.longestOwnMs)} ms less that and waiting for a CPU.`);
        });
      }, () => { void blocks.stop(); /* the state and the log show the error */ });
    });
  }
  // The surface tests and other extensions use.
  return { services, statusBar, participant, tokens, panel, selectionTokens, bench, completions, toolActivity };
}

export const WALKTHROUGH_ID = 'nanochat.nanochat#gettingStarted';

/** The first time nanochat starts without a model, it opens its walkthrough, which offers the default download. */
async function offerWalkthrough(context: vscode.ExtensionContext, models: ModelManager): Promise<void> {
  if (models.selectedPath || context.globalState.get<boolean>('nanochat.walkthroughShown')) return;
  await context.globalState.update('nanochat.walkthroughShown', true);
  await vscode.commands.executeCommand('workbench.action.openWalkthrough', WALKTHROUGH_ID, false).then(undefined, () => undefined);
}

let core: (() => Promise<void>) | undefined;

export async function deactivate(): Promise<void> {
  const dispose = core;
  core = undefined;
  await dispose?.();
}
