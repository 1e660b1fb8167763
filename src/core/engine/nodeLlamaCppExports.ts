/**
 * Every name nanochat takes from node-llama-cpp at run time. The extension imports only the modules
 * that define these (and what they import), not node-llama-cpp's index, which would also evaluate its
 * model downloader, CLI helpers and ~100 more modules nanochat never calls. `importNodeLlamaCpp()`
 * is typed with these names alone, so a new one is a compile error until it is listed here.
 * tools/importOrder.mjs reads this list (the quoted names below) to find each name's module.
 */
export const NODE_LLAMA_CPP_EXPORTS = [
  'getLlama', 'LlamaLogLevel',
  'LlamaChat', 'LlamaCompletion', 'TokenBias',
  'resolveChatWrapper', 'chatWrappers',
  'LlamaText', 'SpecialToken', 'SpecialTokensText',
  'readGgufFileInfo', 'GgufInsights',
] as const;

export type NodeLlamaCppExport = typeof NODE_LLAMA_CPP_EXPORTS[number];
