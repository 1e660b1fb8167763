// npm run prompt -- --model FILE.gguf --messages CONVERSATION.json [--json] [--no-system-prompt] [--thinking on|off]
// Prints the exact text and token ids nanochat would evaluate for a conversation in OpenAI's chat
// format ({messages: [{role, content, tool_calls?, tool_call_id?}], tools?: [{type: "function", function}]}),
// from the model's vocabulary and chat template only (no weights are loaded).
// --json: {model, chatFormat, text, tokens}. nanochat's own system prompt (the nanochat.systemPrompt
// default) comes first, as in the editor, unless --no-system-prompt.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { conversationPrompt, fromOpenAiConversation } from '../../src/core/chat/prompt';
import { describeTemplate, nanochatWrapper, templateOptions } from '../../src/core/engine/chatTemplate';
import { getLlamaFor, importNodeLlamaCpp } from '../../src/core/engine/llama';
import { errorMessage } from '../../src/core/errors';
import { silentLogger } from '../../src/core/log';
import { checkModelFile } from '../../src/core/modelFiles/ggufCheck';
import { defaultSettings } from '../../src/core/settings';

async function main(): Promise<number> {
  const { values } = parseArgs({ options: {
    model: { type: 'string' }, messages: { type: 'string' }, json: { type: 'boolean', default: false },
    'no-system-prompt': { type: 'boolean', default: false }, thinking: { type: 'string', default: 'on' }, help: { type: 'boolean', default: false },
  } });
  if (values.help || !values.model || !values.messages) {
    process.stderr.write('usage: npm run prompt -- --model FILE.gguf --messages CONVERSATION.json [--json] [--no-system-prompt] [--thinking on|off]\n');
    return values.help ? 0 : 2;
  }
  if (values.thinking !== 'on' && values.thinking !== 'off') throw new Error(`--thinking must be on or off, not "${values.thinking}"`);
  let raw: unknown;
  try { raw = JSON.parse(fs.readFileSync(values.messages, 'utf8')); } catch (err) { throw new Error(`${values.messages}: ${errorMessage(err)}`); }
  const { conversation, tools } = fromOpenAiConversation(raw);
  const modelPath = path.resolve(values.model);
  const llama = await getLlamaFor('off', silentLogger);
  // llama.cpp only sees files that passed nanochat's own checks.
  await checkModelFile(modelPath, { llama });
  const model = await llama.loadModel({ modelPath, vocabOnly: true });
  try {
    const lib = await importNodeLlamaCpp();
    const { wrapper, template } = nanochatWrapper(lib.resolveChatWrapper(model), model, lib, () => templateOptions({ thinking: values.thinking as 'on' | 'off' }));
    const tokens = conversationPrompt(model, wrapper, conversation, { systemPrompt: values['no-system-prompt'] ? null : defaultSettings().systemPrompt, tools });
    const text = model.detokenize(tokens, true);
    const chatFormat = `${wrapper.wrapperName}${describeTemplate(template) === 'none' ? '' : ', model\'s own template'}`;
    if (values.json) {
      process.stdout.write(JSON.stringify({ model: modelPath, chatFormat, text, tokens: [...tokens] }) + '\n');
    } else {
      process.stdout.write(`${text}\n`);
      process.stderr.write(`(${tokens.length} tokens, chat format ${chatFormat}; ${path.basename(modelPath)})\n`);
      process.stderr.write(`${JSON.stringify([...tokens])}\n`);
    }
    return 0;
  } finally {
    await model.dispose();
  }
}

main().then((code) => process.exit(code), (err) => {
  process.stderr.write(`nanochat prompt: ${errorMessage(err).split('\n')[0]}\n`);
  process.exit(1);
});
