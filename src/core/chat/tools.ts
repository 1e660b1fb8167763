import type { ChatModelFunctions, GbnfJsonSchema } from 'node-llama-cpp' with { 'resolution-mode': 'import' };

/** A tool the model may call, as VS Code (or any caller) describes it: name, description, JSON Schema. */
export interface ToolDefinition {
  name: string;
  description?: string;
  parameters?: object;
}

/** A call the model made, with its result once the caller has run it. */
export interface ToolCall {
  id?: string;
  name: string;
  params: unknown;
  result?: string;
}

type Json = Record<string, unknown>;
const SCALARS = ['string', 'number', 'integer', 'boolean', 'null'] as const;

/**
 * Reduces a JSON Schema to the subset node-llama-cpp turns into a grammar (types, properties,
 * required, items, enum, const, oneOf/anyOf, descriptions). Keywords outside it are dropped, so a
 * schema it cannot express loosens instead of failing the request.
 */
export function toGbnfSchema(schema: unknown, depth = 0): GbnfJsonSchema {
  const any = { type: [...SCALARS] } as unknown as GbnfJsonSchema;
  if (!schema || typeof schema !== 'object' || depth > 8) return any;
  const s = schema as Json;
  const description = typeof s.description === 'string' ? { description: s.description } : {};
  if ('const' in s) return { const: s.const, ...description } as GbnfJsonSchema;
  if (Array.isArray(s.enum) && s.enum.length > 0) return { enum: s.enum, ...description } as GbnfJsonSchema;
  const alternatives = (s.oneOf ?? s.anyOf) as unknown[] | undefined;
  if (Array.isArray(alternatives) && alternatives.length > 0) {
    return { oneOf: alternatives.map((a) => toGbnfSchema(a, depth + 1)), ...description } as GbnfJsonSchema;
  }
  const type = Array.isArray(s.type) ? s.type.find((t) => t !== 'null') : s.type;
  if (type === 'object' || (type === undefined && s.properties && typeof s.properties === 'object')) {
    const properties: Record<string, GbnfJsonSchema> = {};
    for (const [key, value] of Object.entries((s.properties ?? {}) as Json)) properties[key] = toGbnfSchema(value, depth + 1);
    const required = Array.isArray(s.required) ? s.required.filter((k): k is string => typeof k === 'string' && k in properties) : undefined;
    return { type: 'object', properties, ...(required ? { required } : {}), ...description } as GbnfJsonSchema;
  }
  if (type === 'array') return { type: 'array', items: toGbnfSchema(s.items, depth + 1), ...description } as GbnfJsonSchema;
  if (typeof type === 'string' && (SCALARS as readonly string[]).includes(type)) return { type, ...description } as GbnfJsonSchema;
  return any;
}

const originals = new WeakMap<object, Map<string, object>>();

/**
 * The tools as node-llama-cpp functions: each schema reduced to what a grammar can constrain. The
 * callers' own schemas are kept beside them, so a chat template renders the tools as given.
 */
export function toChatModelFunctions(tools: readonly ToolDefinition[]): ChatModelFunctions {
  const functions: Record<string, { description?: string; params?: GbnfJsonSchema }> = {};
  const schemas = new Map<string, object>();
  for (const tool of tools) {
    const params = tool.parameters && Object.keys((tool.parameters as Json).properties ?? {}).length > 0 ? toGbnfSchema(tool.parameters) : undefined;
    functions[tool.name] = { description: tool.description, ...(params ? { params } : {}) };
    if (tool.parameters) schemas.set(tool.name, tool.parameters);
  }
  originals.set(functions, schemas);
  return functions as ChatModelFunctions;
}

/** The JSON Schema a tool was given with, before toChatModelFunctions reduced it. */
export function originalToolSchema(functions: ChatModelFunctions, name: string): object | undefined {
  return originals.get(functions)?.get(name);
}
