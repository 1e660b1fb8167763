import type { Token, TokenBias, Tokenizer } from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import { importNodeLlamaCpp } from '../../src/core/engine/llama';

/**
 * A tokenBias that steers random weights through `script`, one token per sampled token, then leaves
 * sampling alone (or returns `after`). The chat and completion tests force known output this way.
 */
export async function scriptedBias(tokenizer: Tokenizer, script: readonly Token[], after?: TokenBias): Promise<() => TokenBias> {
  const { TokenBias } = await importNodeLlamaCpp();
  let step = 0;
  return () => {
    if (step >= script.length && after) return after;
    const bias = new TokenBias(tokenizer);
    if (step < script.length) bias.set(script[step], { logit: 1000 });
    step++;
    return bias;
  };
}
