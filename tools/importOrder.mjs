// Writes, for src/core/engine/llama.ts's importNodeLlamaCpp (dist/node-llama-cpp-modules.json):
// - `exports`: the module that defines each name nanochat uses (src/core/engine/nodeLlamaCppExports.ts),
//   found in node-llama-cpp's index; the extension imports those modules, not the index, which would
//   also evaluate ~100 modules nanochat never calls (its model downloader, CLI helpers);
// - `modules`: every module those import, dependencies first (each import cycle as one unit, in Node's
//   own order): importing them one at a time turns the 0.3–0.5 s the extension host's event loop was
//   blocked by the import into blocks of one module, or one cycle, each. The graph is Node's own: a
//   resolve hook records every import as Node resolves it (CommonJS packages are leaves: their
//   require()s evaluate with them).
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
const packageRoot = path.join(root, 'node_modules', 'node-llama-cpp');
const indexFile = path.join(packageRoot, 'dist', 'index.js'); // its exports' "."

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

// The names nanochat uses, and the module node-llama-cpp's index takes each from.
const namesFile = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'core', 'engine', 'nodeLlamaCppExports.ts');
const names = [...fs.readFileSync(namesFile, 'utf8').match(/\[([^\]]*)\]\s*as const/)[1].matchAll(/'([A-Za-z_$][\w$]*)'/g)].map((m) => m[1]);
const definedIn = new Map();
for (const m of fs.readFileSync(indexFile, 'utf8').matchAll(/^import\s*\{([^}]*)\}\s*from\s*"(\.[^"]+)";/gm)) {
  for (const part of m[1].split(',')) {
    const [imported, local = imported] = part.trim().split(/\s+as\s+/);
    if (imported && local === imported) definedIn.set(local, path.join(path.dirname(indexFile), m[2]));
  }
}
const missing = names.filter((n) => !definedIn.has(n));
if (!names.length || missing.length) throw new Error(`node-llama-cpp's index does not import ${missing.join(', ') || 'the names'} from a module of its own: update ${path.relative(process.cwd(), namesFile)} or this tool`);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'nanochat-import-order-'));
const entryFile = path.join(work, 'entry.mjs');
const entryModules = [...new Set(names.map((n) => definedIn.get(n)))];
fs.writeFileSync(entryFile, entryModules.map((f) => `import ${JSON.stringify(pathToFileURL(f).href)};\n`).join(''));
const edgesFile = path.join(work, 'edges.json');
const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url)], {
  cwd: root, env: { ...process.env, NANOCHAT_IMPORT_ORDER_CHILD: entryFile, NANOCHAT_IMPORT_ORDER_EDGES: edgesFile, NODE_DISABLE_COMPILE_CACHE: '1' }, encoding: 'utf8',
});
if (child.status !== 0) throw new Error(`recording node-llama-cpp's imports failed: ${child.stderr}`);
const { entry, edges } = JSON.parse(fs.readFileSync(edgesFile, 'utf8'));
fs.rmSync(work, { recursive: true, force: true });
const children = new Map();
for (const [parent, url] of edges) {
  if (!children.has(parent)) children.set(parent, []);
  const list = children.get(parent);
  if (!list.includes(url)) list.push(url);
}
// The order to import them in, one at a time: Node.js's own depth-first walk from the entry (each
// module's imports in their order), with each import cycle taken as one unit (Tarjan's strongly connected
// components, which come out dependencies first). A cycle's modules are loaded and evaluated together,
// and in Node.js's plain post-order a cycle's first module comes before the modules the rest of the
// cycle imports: importing it alone then loaded those too. node-llama-cpp's getLlamaWithoutBackend.js
// and getLlama.js import each other, so importing the first loaded 144 modules at once (72–145 ms of
// the extension host's loop in one block: Node.js 22+ links synchronously). Here everything a cycle
// imports comes first, one module at a time, and then the cycle, from the module Node.js's walk
// entered it by (so the cycle evaluates in Node's own order).
const order = [];
const index = new Map();
const low = new Map();
const stack = [];
const onStack = new Set();
let cycles = 0;
let largestCycle = 0;
const visit = (url) => {
  index.set(url, index.size);
  low.set(url, index.get(url));
  stack.push(url);
  onStack.add(url);
  for (const child of children.get(url) ?? []) {
    if (!index.has(child)) { visit(child); low.set(url, Math.min(low.get(url), low.get(child))); }
    else if (onStack.has(child)) low.set(url, Math.min(low.get(url), index.get(child)));
  }
  if (low.get(url) !== index.get(url)) return;
  const component = [];
  let member;
  do { member = stack.pop(); onStack.delete(member); component.push(member); } while (member !== url);
  if (component.length > 1) { cycles++; largestCycle = Math.max(largestCycle, component.length); }
  // `url` is where Node.js's walk entered the cycle: imported first, it evaluates the cycle in Node's order.
  for (const m of [url, ...component.filter((c) => c !== url).reverse()]) if (m.startsWith('file:')) order.push(m);
};
visit(entry);
const rootUrl = pathToFileURL(root).href + '/';
// JavaScript only: a JSON module needs an import attribute, and is read with the module that imports it.
const modules = order.filter((u) => u.startsWith(rootUrl) && /\.[cm]?js$/.test(u)).map((u) => decodeURIComponent(u.slice(rootUrl.length)));
const relative = (file) => path.relative(root, fs.realpathSync(file)).split(path.sep).join('/');
const exports = Object.fromEntries(names.map((n) => [n, relative(definedIn.get(n))]));
if (Object.values(exports).some((f) => !modules.includes(f))) throw new Error('a module that defines a name nanochat uses was not recorded');
const version = JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')).version;
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, `${JSON.stringify({ nodeLlamaCpp: version, exports, modules })}\n`);
console.log(`${path.relative(root, out)}: ${modules.length} modules of node-llama-cpp ${version} define or serve the ${names.length} names nanochat uses, dependencies first (${cycles} import cycles, the largest ${largestCycle} modules)`);
