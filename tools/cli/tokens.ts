// npm run tokens -- --model FILE [--engine js|llama] [--json] FILE…
// Counts the tokens of files with a model's tokenizer, without loading its weights.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { errorMessage } from '../../src/core/errors';
import { TokenCounter, type TokenizerEngine } from '../../src/core/tokens/tokenCounter';

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { model: { type: 'string' }, engine: { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } },
  });
  if (values.help || !values.model) {
    process.stderr.write('usage: npm run tokens -- --model FILE.gguf [--engine js|llama] [--json] FILE…\n');
    return values.help ? 0 : 2;
  }
  if (values.engine !== undefined && values.engine !== 'js' && values.engine !== 'llama') {
    throw new Error(`--engine must be js or llama, not "${values.engine}"`);
  }
  const model = path.resolve(values.model);
  const counter = new TokenCounter();
  try {
    const engine = (values.engine as TokenizerEngine | undefined) ?? await counter.engineFor(model);
    const files: Array<{ path: string; tokens: number; chars: number }> = [];
    for (const file of positionals) {
      const text = fs.readFileSync(file, 'utf8');
      files.push({ path: file, tokens: (await counter.count(model, text, engine)).tokens, chars: [...text].length });
    }
    if (values.json) {
      process.stdout.write(JSON.stringify({ model, engine, files }) + '\n');
    } else {
      for (const f of files) process.stdout.write(`${f.path}: ${f.tokens} tokens, ${f.chars} characters\n`);
      process.stdout.write(`(${engine === 'js' ? 'JS tokenizer' : 'llama.cpp tokenizer'} of ${path.basename(model)})\n`);
    }
    return 0;
  } finally {
    await counter.dispose();
  }
}

main().then((code) => process.exit(code), (err) => {
  process.stderr.write(`nanochat tokens: ${errorMessage(err).split('\n')[0]}\n`);
  process.exit(1);
});
