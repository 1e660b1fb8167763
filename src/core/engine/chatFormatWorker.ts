import { errorMessage } from '../errors';
import { describeChatWrapper } from './chatFormat';
import { importNodeLlamaCpp } from './llama';

/**
 * The chat-format resolution's own process (forked by chatFormat.ts): it loads the model's
 * vocabulary only (the parent checked the file before), lets node-llama-cpp resolve the chat wrapper
 * — the synchronous part that must not stall the extension host — and answers with it as plain data.
 */
process.once('message', (request: { modelPath: string }) => {
  void (async () => {
    try {
      const lib = await importNodeLlamaCpp();
      const llama = await lib.getLlama({ gpu: false, build: 'never', logLevel: lib.LlamaLogLevel.disabled });
      const model = await llama.loadModel({ modelPath: request.modelPath, vocabOnly: true });
      const format = describeChatWrapper(lib.resolveChatWrapper(model), lib);
      process.send!({ format });
    } catch (err) {
      process.send!({ error: errorMessage(err).split('\n')[0] });
    }
  })();
});
process.on('disconnect', () => process.exit(0));
