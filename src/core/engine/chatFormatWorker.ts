import path from 'node:path';
import { errorMessage } from '../errors';
import { describeChatWrapper } from './chatFormat';
import { cmakeOptionsToLoad, configureLlama, importNodeLlamaCpp, loadModelLean } from './llama';

/**
 * The chat-format resolution's own process (forked by chatFormat.ts): it loads the model's
 * vocabulary only (the parent checked the file before), lets node-llama-cpp resolve the chat wrapper
 * — the synchronous part that must not stall the extension host — and answers with it as plain data.
 */
// Only the modules nanochat uses (the build's list beside this script, dist/), imported while the
// parent sends the request.
configureLlama({ importOrder: path.join(__dirname, 'node-llama-cpp-modules.json') });
const imported = importNodeLlamaCpp();
imported.catch(() => { /* answered below */ });

process.once('message', (request: { modelPath: string }) => {
  void (async () => {
    try {
      const lib = await imported;
      // The parent's build for this machine when there is one, else the prebuilt binaries as the parent
      // laid them out once they passed their test here (node-llama-cpp tests a prebuilt binary in yet
      // another process first: ~0.55 s); and its vocabulary strings never made (as the parent's).
      const { cmakeOptions } = await cmakeOptionsToLoad();
      const llama = await lib.getLlama({ gpu: false, build: 'never', cmakeOptions, logLevel: lib.LlamaLogLevel.disabled });
      const model = await loadModelLean(llama, { modelPath: request.modelPath, vocabOnly: true });
      const format = describeChatWrapper(lib.resolveChatWrapper(model), lib);
      process.send!({ format });
    } catch (err) {
      process.send!({ error: errorMessage(err).split('\n')[0] });
    }
  })();
});
process.on('disconnect', () => process.exit(0));
