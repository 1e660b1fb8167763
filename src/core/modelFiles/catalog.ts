import { z } from 'zod';
import catalogJson from '../../../models/catalog.json';
import { NanochatError } from '../errors';

export const catalogModelSchema = z.object({
  id: z.string().regex(/^[a-z0-9][a-z0-9.-]*$/),
  name: z.string().min(1),
  repo: z.string().regex(/^[\w.-]+\/[\w.-]+$/, 'owner/name'),
  file: z.string().regex(/^[\w./-]+\.gguf$/, 'a .gguf file'),
  quantization: z.string().min(1),
  sizeBytes: z.number().int().positive(),
  sizeExact: z.boolean(),
  contextLength: z.number().int().positive(),
  parameters: z.string().min(1),
  license: z.string().min(1),
  goodFor: z.enum(['fastest', 'balanced', 'code', 'reasoning']),
  description: z.string().min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  /** The node-llama-cpp chat wrapper the model's template resolves to (checked on a template-true copy by the tests). */
  chatFormat: z.string().min(1),
});

export const catalogSchema = z.object({
  $comment: z.string().optional(),
  defaultModel: z.string(),
  models: z.array(catalogModelSchema).min(1),
}).refine((c) => c.models.some((m) => m.id === c.defaultModel), 'defaultModel must name a model in the list')
  .refine((c) => new Set(c.models.map((m) => m.id)).size === c.models.length, 'model ids must be unique');

export type CatalogModel = z.infer<typeof catalogModelSchema>;
export type Catalog = z.infer<typeof catalogSchema>;

/** Validates a catalog; a broken one is a bug in the extension, reported with every problem found. */
export function parseCatalog(raw: unknown): Catalog {
  const parsed = catalogSchema.safeParse(raw);
  if (!parsed.success) {
    throw new NanochatError(`The model catalog is invalid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  return parsed.data;
}

let bundled: Catalog | undefined;
export function bundledCatalog(): Catalog {
  bundled ??= parseCatalog(catalogJson);
  return bundled;
}

/** Memory a model needs to run, roughly: its weights plus room for the context and runtime. */
export function estimatedRamBytes(sizeBytes: number): number {
  return Math.round(sizeBytes * 1.2 + 300e6);
}

export interface ModelSource { url: string; fileName: string; sha256?: string; label: string }

/**
 * Resolves what the user asked to download: a catalog id, `hf:owner/repo/path/file.gguf`
 * (optionally `@revision` after the repo), or an https URL (http only on the loopback address).
 */
export function resolveModelSource(input: string, hfEndpoint = 'https://huggingface.co', catalog = bundledCatalog()): ModelSource {
  const text = input.trim();
  const entry = catalog.models.find((m) => m.id === text);
  if (entry) return { url: hfFileUrl(hfEndpoint, entry.repo, 'main', entry.file), fileName: entry.file.split('/').pop()!, sha256: entry.sha256, label: entry.name };
  const hf = /^hf:([\w.-]+)\/([\w.-]+)(?:@([\w.-]+))?\/(.+\.gguf)$/i.exec(text);
  if (hf) {
    const [, owner, repo, revision, file] = hf;
    return { url: hfFileUrl(hfEndpoint, `${owner}/${repo}`, revision ?? 'main', file), fileName: file.split('/').pop()!, label: `${owner}/${repo}/${file}` };
  }
  let url: URL;
  try { url = new URL(text); } catch {
    throw new NanochatError(`"${text}" is not a catalog model, an hf:owner/repo/file.gguf reference or a URL.`);
  }
  const loopback = url.hostname === '127.0.0.1' || url.hostname === 'localhost' || url.hostname === '[::1]';
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) throw new NanochatError(`Only https downloads are allowed (got ${url.protocol}//${url.host}).`);
  const fileName = decodeURIComponent(url.pathname.split('/').pop() ?? '');
  if (!/\.gguf$/i.test(fileName)) throw new NanochatError(`${text} does not point to a .gguf file.`);
  return { url: url.toString(), fileName, label: fileName };
}

function hfFileUrl(endpoint: string, repo: string, revision: string, file: string): string {
  return `${endpoint.replace(/\/$/, '')}/${repo}/resolve/${encodeURIComponent(revision)}/${file.split('/').map(encodeURIComponent).join('/')}`;
}
