// npm run bench:tokenizer -- [--model FILE.gguf] [--runs N] [--json]
// Tokens per second of the JS tokenizer and of llama.cpp's on the same 1 MB of mixed text, in one run.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { getLlamaFor } from '../../src/core/engine/llama';
import { silentLogger } from '../../src/core/log';
import { loadJsTokenizer } from '../../src/core/tokens/tokenizer';
import { corpusOfSize } from '../../src/core/bench/corpus';
import { testModel } from '../../test/support/models';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { model: { type: 'string' }, runs: { type: 'string', default: '5' }, json: { type: 'boolean', default: false } } });
  const model = path.resolve(values.model ?? await testModel('stories260K.gguf'));
  const runs = Math.max(1, Number(values.runs));
  const text = corpusOfSize(1_000_000); // numbered blocks: no two are alike, so no cache flatters the result
  const edited = `${text.slice(0, 500_000)}An edit in the middle of the document.\n${text.slice(500_000)}`;

  const loadStarted = performance.now();
  const js = await loadJsTokenizer(model);
  const jsLoadMs = performance.now() - loadStarted;
  const llama = await getLlamaFor('off', silentLogger);
  const vocabStarted = performance.now();
  const vocab = await llama.loadModel({ modelPath: model, vocabOnly: true });
  const llamaLoadMs = performance.now() - vocabStarted;

  const time = (fn: () => number) => { const t = performance.now(); const n = fn(); return { n, ms: performance.now() - t }; };
  const jsEncode: number[] = [], jsCount: number[] = [], jsRecount: number[] = [], llamaTimes: number[] = [];
  let tokens = 0;
  for (let i = 0; i < runs; i++) {
    const fresh = await loadJsTokenizer(model); // a cold counting cache for every run
    const e = time(() => js.encode(text).length);
    const c = time(() => fresh.count(text));
    const r = time(() => fresh.count(edited));
    const l = time(() => vocab.tokenize(text, false).length);
    if (e.n !== l.n || c.n !== l.n) throw new Error(`JS and llama.cpp disagree: ${e.n} / ${c.n} vs ${l.n}`);
    tokens = l.n;
    jsEncode.push(e.ms); jsCount.push(c.ms); jsRecount.push(r.ms); llamaTimes.push(l.ms);
  }
  await vocab.dispose();
  const perSecond = (ms: number) => Math.round(tokens / (ms / 1000));
  const report = {
    model, engineKind: js.kind, bytes: Buffer.byteLength(text), tokens, runs,
    load: { jsMs: Math.round(jsLoadMs), llamaVocabMs: Math.round(llamaLoadMs) },
    jsEncodeTokensPerSecond: perSecond(median(jsEncode)),
    jsCountTokensPerSecond: perSecond(median(jsCount)),
    jsRecountAfterEditMs: Math.round(median(jsRecount)),
    llamaTokensPerSecond: perSecond(median(llamaTimes)),
    ratioJsCountToLlama: Number((median(llamaTimes) / median(jsCount)).toFixed(2)),
    ratioJsRecountToLlama: Number((median(llamaTimes) / median(jsRecount)).toFixed(1)),
  };
  if (values.json) { process.stdout.write(JSON.stringify(report) + '\n'); return; }
  console.log(`${path.basename(model)} (${js.kind}), ${report.bytes.toLocaleString()} bytes, ${tokens.toLocaleString()} tokens, median of ${runs}:`);
  console.log(`  load:                    JS ${report.load.jsMs} ms, llama.cpp vocabulary ${report.load.llamaVocabMs} ms`);
  console.log(`  JS encode (whole text):  ${report.jsEncodeTokensPerSecond.toLocaleString()} tok/s`);
  console.log(`  JS count (cold cache):   ${report.jsCountTokensPerSecond.toLocaleString()} tok/s`);
  console.log(`  JS recount after edit:   ${report.jsRecountAfterEditMs} ms`);
  console.log(`  llama.cpp tokenize:      ${report.llamaTokensPerSecond.toLocaleString()} tok/s`);
  console.log(`  ratio llama.cpp time / JS count: ${report.ratioJsCountToLlama}×; / JS recount after an edit: ${report.ratioJsRecountToLlama}×`);
}

main().catch((err) => { process.stderr.write(`bench:tokenizer: ${err instanceof Error ? err.message : err}\n`); process.exit(1); });
