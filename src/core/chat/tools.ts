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

export function toChatModelFunctions(tools: readonly ToolDefinition[]): ChatModelFunctions {
  const functions: Record<string, { description?: string; params?: GbnfJsonSchema }> = {};
  for (const tool of tools) {
    const params = tool.parameters && Object.keys((tool.parameters as Json).properties ?? {}).length > 0 ? toGbnfSchema(tool.parameters) : undefined;
    functions[tool.name] = { description: tool.description, ...(params ? { params } : {}) };
  }
  return functions as ChatModelFunctions;
}
