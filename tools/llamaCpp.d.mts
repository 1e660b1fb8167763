/** The bundled llama.cpp source tree (models/ holds vocab GGUFs and chat templates), cloned from the bundle once. */
export function llamaCppSource(): string;
/** The folder holding llama-server and llama-bench, built once if needed (undefined when missing and build is false). */
export function llamaCppBin(options?: { build?: boolean; log?: (message: string) => void }): string | undefined;
