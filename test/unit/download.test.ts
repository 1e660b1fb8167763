import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundledCatalog, parseCatalog, resolveModelSource } from '../../src/core/modelFiles/catalog';
import { DownloadError, Downloader, type DownloadProgress } from '../../src/core/modelFiles/download';
import { ModelServer } from '../support/modelServer';
import { startLoopbackProxy } from '../support/proxy';
import { sha256File, testModel } from '../support/models';

const FILE = 'stories260K.gguf';

describe('model downloads (loopback server)', () => {
  let data: Buffer;
  let server: ModelServer;
  let dir: string;
  let url: string;
  const downloader = (extra: Partial<ConstructorParameters<typeof Downloader>[0]> = {}) =>
    new Downloader({ modelsDir: dir, retries: 0, backoffMs: 10, tokenHosts: ['127.0.0.1'], ...extra });
  /** Files in the models folder, partial downloads included. */
  const listing = () => [...fs.readdirSync(dir).filter((f) => f !== '.partial'), ...(fs.existsSync(path.join(dir, '.partial')) ? fs.readdirSync(path.join(dir, '.partial')).map((f) => `.partial/${f}`) : [])].sort();

  before(async () => {
    data = fs.readFileSync(await testModel(FILE));
    server = await new ModelServer({ [FILE]: data, 'sub/dir/nested.gguf': data, 'not-a-model.gguf': Buffer.from('<html>oops</html>'.repeat(100)) }).start();
  });
  after(() => server.close());
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanochat-dl-'));
    server.behaviour = {};
    server.requests.length = 0;
    url = resolveModelSource(`hf:owner/repo/${FILE}`, server.origin).url;
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('downloads through a Hugging Face redirect, verifies the advertised sha256 and installs the file', async () => {
    const phases: DownloadProgress['phase'][] = [];
    const file = await downloader().download({ url, fileName: FILE }, { onProgress: (p) => phases.push(p.phase) });
    assert.equal(file, path.join(dir, FILE));
    assert.equal(sha256File(file), sha256File(await testModel(FILE)));
    assert.deepEqual(listing(), [FILE], 'no stray files');
    assert.deepEqual([...new Set(phases)], ['fetching', 'downloading', 'verifying', 'done']);
    assert.deepEqual(server.requests.map((r) => r.path), [`/owner/repo/resolve/main/${FILE}`, `/cdn/${FILE}`]);
  });

  it('resumes an interrupted download from the saved offset', async () => {
    server.behaviour = { cutAfterBytes: 400_000 };
    await assert.rejects(downloader().download({ url, fileName: FILE }), (e: DownloadError) => e.problem === 'network');
    assert.deepEqual(listing(), [`.partial/${FILE}.part`, `.partial/${FILE}.part.json`]);
    const saved = fs.statSync(path.join(dir, '.partial', `${FILE}.part`)).size;
    assert.ok(saved > 0 && saved <= 400_000, `saved ${saved} bytes (the server cut the connection at 400,000)`);
    const file = await downloader().download({ url, fileName: FILE });
    assert.equal(server.fileRequests().at(-1)!.range, `bytes=${saved}-`);
    assert.ok(fs.readFileSync(file).equals(data));
    assert.deepEqual(listing(), [FILE]);
  });

  it('retries transient failures with backoff within one download, resuming each time', async () => {
    server.behaviour = { fail500Times: 2, cutAfterBytes: 300_000, cutTimes: 1 };
    const file = await downloader({ retries: 4 }).download({ url, fileName: FILE });
    assert.ok(fs.readFileSync(file).equals(data));
    const ranges = server.fileRequests().map((r) => r.range ?? 'none');
    assert.equal(ranges.filter((r) => r === 'none').length, 3, `requests: ${ranges.join(', ')}`);
    assert.match(ranges.at(-1)!, /^bytes=\d+-$/);
  });

  it('restarts cleanly when the server ignores Range', async () => {
    server.behaviour = { cutAfterBytes: 500_000 };
    await assert.rejects(downloader().download({ url, fileName: FILE }));
    server.behaviour = { ignoreRange: true };
    const file = await downloader().download({ url, fileName: FILE });
    assert.ok(fs.readFileSync(file).equals(data));
    assert.deepEqual(listing(), [FILE]);
  });

  it('deletes a file whose sha256 does not match and says so', async () => {
    server.behaviour = { advertisedSha256: 'a'.repeat(64) };
    await assert.rejects(downloader().download({ url, fileName: FILE }), (e: DownloadError) => e.problem === 'integrity' && /failed verification/.test(e.message));
    assert.deepEqual(listing(), []);
    await assert.rejects(downloader().download({ url, fileName: FILE, sha256: 'b'.repeat(64) }), { problem: 'integrity' });
    assert.deepEqual(listing(), []);
  });

  it('refuses a downloaded file that is not a GGUF model', async () => {
    const bad = resolveModelSource('hf:owner/repo/not-a-model.gguf', server.origin);
    await assert.rejects(downloader().download({ url: bad.url, fileName: bad.fileName }), (e: DownloadError) => e.problem === 'integrity' && /not a usable model/.test(e.message));
    assert.deepEqual(listing(), []);
  });

  it('names the missing file on 404, asks for a token on 401/403, and does not retry them', async () => {
    const missing = resolveModelSource('hf:owner/repo/missing.gguf', server.origin);
    await assert.rejects(downloader({ retries: 3 }).download({ url: missing.url, fileName: missing.fileName }), (e: DownloadError) => e.problem === 'not-found' && /missing\.gguf was not found/.test(e.message));
    for (const status of [401, 403]) {
      server.behaviour = { status };
      server.requests.length = 0;
      await assert.rejects(downloader({ retries: 3 }).download({ url, fileName: FILE }), (e: DownloadError) => e.problem === 'unauthorized' && /Set Hugging Face Token/.test(e.message));
      assert.equal(server.requests.length, 1, 'not retried');
    }
    assert.deepEqual(listing(), []);
  });

  it('sends the token to the Hugging Face host only', async () => {
    await downloader({ token: async () => 'hf_secret', tokenHosts: ['localhost'] }).download({ url: url.replace('127.0.0.1', 'localhost'), fileName: FILE });
    assert.equal(server.requests[0].authorization, 'Bearer hf_secret');
    assert.equal(server.requests[1].authorization, undefined, 'the redirect target (another host) gets no token');
  });

  it('keeps a resumable partial file when cancelled', async () => {
    server.behaviour = { chunkDelayMs: 5 };
    const controller = new AbortController();
    const pending = downloader().download({ url, fileName: FILE }, { signal: controller.signal, onProgress: (p) => { if (p.receivedBytes > 200_000) controller.abort(); } });
    await assert.rejects(pending, (e: DownloadError) => e.problem === 'cancelled' && /resumes/.test(e.message));
    assert.ok(!fs.existsSync(path.join(dir, FILE)), 'nothing installed');
    const saved = fs.statSync(path.join(dir, '.partial', `${FILE}.part`)).size;
    assert.ok(saved > 0 && saved < data.length);
    server.behaviour = {};
    await downloader().download({ url, fileName: FILE });
    assert.equal(server.fileRequests().at(-1)!.range, `bytes=${saved}-`);
    assert.deepEqual(listing(), [FILE]);
  });

  it('reports a folder it cannot write to clearly', async () => {
    const blocker = path.join(dir, 'a-file');
    fs.writeFileSync(blocker, 'x');
    const blocked = new Downloader({ modelsDir: path.join(blocker, 'models'), retries: 0 });
    await assert.rejects(blocked.download({ url, fileName: FILE }), (e: DownloadError) => e.problem === 'write' && /Cannot save the model in .*nanochat\.modelsFolder/.test(e.message));
    assert.equal(server.fileRequests().length, 0);
  });

  it('checks free disk space before downloading', async () => {
    await assert.rejects(downloader({ freeSpace: async () => 1000 }).download({ url, fileName: FILE }), (e: DownloadError) => e.problem === 'no-space' && /Not enough disk space/.test(e.message));
    assert.ok(!fs.existsSync(path.join(dir, FILE)));
  });

  it('shares one download between concurrent requests for the same file', async () => {
    server.behaviour = { chunkDelayMs: 2 };
    const d = downloader();
    const [a, b] = await Promise.all([d.download({ url, fileName: FILE }), d.download({ url, fileName: FILE })]);
    assert.equal(a, b);
    assert.equal(server.fileRequests().length, 1);
    assert.deepEqual(listing(), [FILE]);
  });

  it('goes through the proxy that HTTP_PROXY names', async () => {
    // undici tunnels every proxied request with CONNECT, plain http ones too.
    const proxy = await startLoopbackProxy();
    const saved = { HTTP_PROXY: process.env.HTTP_PROXY, NO_PROXY: process.env.NO_PROXY, no_proxy: process.env.no_proxy };
    process.env.HTTP_PROXY = proxy.url;
    delete process.env.NO_PROXY;
    delete process.env.no_proxy;
    try {
      const file = await downloader().download({ url, fileName: FILE });
      assert.ok(fs.readFileSync(file).equals(data));
      assert.ok(proxy.seen.length >= 1 && proxy.seen.every((r) => r === `CONNECT ${new URL(server.origin).host}`), `proxy saw: ${proxy.seen.join(', ')}`);
      assert.deepEqual(server.requests.map((r) => r.path), [`/owner/repo/resolve/main/${FILE}`, `/cdn/${FILE}`]);
    } finally {
      for (const [k, v] of Object.entries(saved)) { if (v === undefined) delete process.env[k]; else process.env[k] = v; }
      proxy.close();
    }
  });

  it('refuses unsafe file names and plain-http URLs to other hosts', async () => {
    await assert.rejects(downloader().download({ url, fileName: '../evil.gguf' }), { problem: 'invalid' });
    assert.throws(() => resolveModelSource('http://example.com/model.gguf'), /Only https/);
    assert.throws(() => resolveModelSource('https://example.com/readme.md'), /\.gguf/);
    assert.throws(() => resolveModelSource('not a model'), /not a catalog model/);
    assert.equal(resolveModelSource('hf:owner/repo@v2/sub/dir/nested.gguf', 'https://hf.example').url, 'https://hf.example/owner/repo/resolve/v2/sub/dir/nested.gguf');
  });
});

describe('model catalog', () => {
  it('is valid, has a default and resolves every entry to a Hugging Face URL', () => {
    const catalog = bundledCatalog();
    assert.ok(catalog.models.length >= 6);
    assert.ok(catalog.models.some((m) => m.id === catalog.defaultModel));
    for (const goodFor of ['fastest', 'balanced', 'code', 'reasoning']) assert.ok(catalog.models.some((m) => m.goodFor === goodFor), goodFor);
    for (const m of catalog.models) {
      const source = resolveModelSource(m.id);
      assert.equal(source.url, `https://huggingface.co/${m.repo}/resolve/main/${m.file}`);
      assert.equal(source.fileName, m.file);
    }
  });

  it('rejects an invalid catalog with every problem named', () => {
    assert.throws(() => parseCatalog({ defaultModel: 'x', models: [{ id: 'Bad Id', name: '', repo: 'nope', file: 'a.bin' }] }), /models\.0\.id.*models\.0\.name|models\.0\.name/s);
    assert.throws(() => parseCatalog({ defaultModel: 'missing', models: bundledCatalog().models }), /defaultModel/);
  });
});
