// Writes the order in which Node.js evaluates node-llama-cpp's modules (dist/node-llama-cpp-modules.json),
// for src/core/engine/llama.ts's importNodeLlamaCpp: importing them one at a time, deepest first, turns
// the 0.3–0.5 s the extension host's event loop was blocked by `import('node-llama-cpp')` into
// blocks of one module each. The graph is Node's own: a resolve hook records every import as Node
// resolves it (CommonJS packages are leaves: their require()s evaluate with them).
//
// Usage: node tools/importOrder.mjs [root] [out.json]   (root: the folder whose node_modules holds
// node-llama-cpp, default this repository; out: default <root>/dist/node-llama-cpp-modules.json).
// esbuild.mjs runs it after each build, scripts/package.mjs in each VSIX's own node_modules layout.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fs.realpathSync(path.resolve(process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..')));
const out = path.resolve(process.argv[3] ?? path.join(root, 'dist', 'node-llama-cpp-modules.json'));
const entryFile = path.join(root, 'node_modules', 'node-llama-cpp', 'dist', 'index.js'); // its exports' "."

if (process.env.NANOCHAT_IMPORT_ORDER_CHILD) {
  // In the child: the hooks thread records each (parent, child) edge in resolve order; then the import.
  const { register } = await import('node:module');
  const { port1, port2 } = new MessageChannel();
  const edges = [];
  port1.on('message', (edge) => edges.push(edge));
  port1.unref();
  const hooks = `
    let port;
    export function initialize(data) { port = data.port; }
    export async function resolve(specifier, context, next) {
      const result = await next(specifier, context);
      if (context.parentURL) port.postMessage([context.parentURL, result.url]);
      return result;
    }`;
  register(`data:text/javascript,${encodeURIComponent(hooks)}`, { data: { port: port2 }, transferList: [port2] });
  const entry = pathToFileURL(process.env.NANOCHAT_IMPORT_ORDER_CHILD).href;
  await import(entry);
  await new Promise((r) => setTimeout(r, 200)); // the last messages from the hooks thread
  // A file, not stdout: a pipe's write may not be done when the process exits.
  fs.writeFileSync(process.env.NANOCHAT_IMPORT_ORDER_EDGES, JSON.stringify({ entry, edges }));
  process.exit(0);
}

const edgesFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nanochat-import-order-')), 'edges.json');
const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url)], {
  cwd: root, env: { ...process.env, NANOCHAT_IMPORT_ORDER_CHILD: entryFile, NANOCHAT_IMPORT_ORDER_EDGES: edgesFile, NODE_DISABLE_COMPILE_CACHE: '1' }, encoding: 'utf8',
});
if (child.status !== 0) throw new Error(`recording node-llama-cpp's imports failed: ${child.stderr}`);
const { entry, edges } = JSON.parse(fs.readFileSync(edgesFile, 'utf8'));
fs.rmSync(path.dirname(edgesFile), { recursive: true, force: true });
const children = new Map();
for (const [parent, url] of edges) {
  if (!children.has(parent)) children.set(parent, []);
  const list = children.get(parent);
  if (!list.includes(url)) list.push(url);
}
// Post-order from the entry, in each module's import order: the order Node.js evaluates them in.
const order = [];
const seen = new Set();
const visit = (url) => {
  if (seen.has(url)) return;
  seen.add(url);
  for (const child of children.get(url) ?? []) visit(child);
  if (url.startsWith('file:')) order.push(url);
};
visit(entry);
const rootUrl = pathToFileURL(root).href + '/';
// JavaScript only: a JSON module needs an import attribute, and is read with the module that imports it.
const modules = order.filter((u) => u.startsWith(rootUrl) && /\.[cm]?js$/.test(u)).map((u) => decodeURIComponent(u.slice(rootUrl.length)));
const version = JSON.parse(fs.readFileSync(path.join(root, 'node_modules', 'node-llama-cpp', 'package.json'), 'utf8')).version;
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, `${JSON.stringify({ nodeLlamaCpp: version, modules })}\n`);
console.log(`${path.relative(root, out)}: ${modules.length} modules of node-llama-cpp ${version}, in evaluation order`);
