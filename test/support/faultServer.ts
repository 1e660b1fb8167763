import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type Fault = 'none' | 'status-500' | 'malformed-sse' | 'slow-first-byte' | 'no-models' | 'tool-call-stream' | 'no-tokenize';

/**
 * A loopback server that forwards to a real llama-server, except for the fault it is told to inject
 * into chat completions (or the model list): the ways real servers and proxies fail.
 */
export class FaultServer {
  fault: Fault = 'none';
  private server: http.Server | undefined;
  port = 0;

  constructor(private readonly upstream: string) {}

  get url(): string { return `http://127.0.0.1:${this.port}/v1`; }

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  close(): Promise<void> {
    return new Promise((resolve) => { this.server?.closeAllConnections(); this.server?.close(() => resolve()); });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const chat = req.url?.includes('/chat/completions');
    if (chat && this.fault === 'status-500') {
      res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 500, message: 'the model crashed', type: 'server_error' } }));
      return;
    }
    if (chat && this.fault === 'malformed-sse') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"id":"1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Once upon"},"finish_reason":null}]}\n\n');
      res.end('data: {"choices":[{"delta":{"content": broken\n\n');
      return;
    }
    if (chat && this.fault === 'tool-call-stream') {
      // A tool call as OpenAI and vLLM stream it: the id and name first, the arguments in pieces.
      const chunk = (delta: object, finish: string | null = null) => `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(chunk({ role: 'assistant', tool_calls: [{ index: 0, id: 'call_abc', type: 'function', function: { name: 'getWeather', arguments: '' } }] }));
      res.write(chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city": "Pa' } }] }));
      res.write(chunk({ tool_calls: [{ index: 0, function: { arguments: 'ris"}' } }] }));
      res.write(chunk({}, 'tool_calls'));
      res.end('data: [DONE]\n\n');
      return;
    }
    if (req.url?.includes('/tokenize') && this.fault === 'no-tokenize') {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"code":404,"message":"Not Found"}}');
      return;
    }
    if (chat && this.fault === 'slow-first-byte') {
      await new Promise((r) => setTimeout(r, 3000));
      if (res.destroyed) return;
    }
    if (req.url?.includes('/models') && this.fault === 'no-models') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data: [] }));
      return;
    }
    const upstream = await fetch(`${this.upstream}${req.url}`, {
      method: req.method, headers: { 'content-type': req.headers['content-type'] ?? 'application/json', ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) },
      body: chunks.length ? Buffer.concat(chunks) : undefined,
    }).catch(() => undefined);
    if (!upstream) { res.destroy(); return; }
    res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' });
    if (!upstream.body) { res.end(); return; }
    for await (const part of upstream.body as unknown as AsyncIterable<Uint8Array>) res.write(part);
    res.end();
  }
}
