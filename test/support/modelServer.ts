import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ServerBehaviour {
  /** Answer 200 with the whole file even when a Range is asked for. */
  ignoreRange?: boolean;
  /** Close the connection after this many body bytes, for the next `cutTimes` requests. */
  cutAfterBytes?: number;
  cutTimes?: number;
  /** Answer 500 to the next N file requests. */
  fail500Times?: number;
  /** Answer every request with this status. */
  status?: number;
  /** The sha256 advertised in x-linked-etag (default: the real one). */
  advertisedSha256?: string;
  /** Pause between 16 KB chunks, to give cancellation time. */
  chunkDelayMs?: number;
}

export interface RecordedRequest { path: string; range?: string; authorization?: string }

/**
 * A loopback stand-in for Hugging Face: /OWNER/REPO/resolve/REV/FILE redirects (302) to /cdn/FILE
 * with x-linked-etag (sha256) and x-linked-size, as huggingface.co does for LFS files; /cdn/FILE
 * serves the bytes with Range support.
 */
export class ModelServer {
  readonly requests: RecordedRequest[] = [];
  behaviour: ServerBehaviour = {};
  private readonly server = http.createServer((req, res) => void this.handle(req, res));
  private readonly files = new Map<string, Buffer>();

  constructor(files: Record<string, Buffer>) {
    for (const [name, data] of Object.entries(files)) this.files.set(name, data);
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return this;
  }

  get origin(): string { return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`; }

  fileRequests(): RecordedRequest[] { return this.requests.filter((r) => r.path.startsWith('/cdn/')); }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.origin);
    this.requests.push({ path: url.pathname, range: req.headers.range, authorization: req.headers.authorization });
    const b = this.behaviour;
    if (b.status) { res.writeHead(b.status, { 'content-type': 'text/plain' }); res.end(`status ${b.status}`); return; }
    const hf = /^\/[\w.-]+\/[\w.-]+\/resolve\/[\w.-]+\/(.+)$/.exec(url.pathname);
    if (hf) {
      const data = this.files.get(decodeURIComponent(hf[1]));
      if (!data) { res.writeHead(404, { 'x-error-code': 'EntryNotFound' }); res.end('Entry not found'); return; }
      res.writeHead(302, {
        location: `${this.origin}/cdn/${hf[1]}`, // absolute, on 127.0.0.1: another host name than "localhost", as a CDN would be
        'x-linked-etag': `"${b.advertisedSha256 ?? createHash('sha256').update(data).digest('hex')}"`,
        'x-linked-size': String(data.length),
      });
      res.end();
      return;
    }
    const cdn = /^\/cdn\/(.+)$/.exec(url.pathname);
    const data = cdn ? this.files.get(decodeURIComponent(cdn[1])) : undefined;
    if (!data) { res.writeHead(404); res.end('not found'); return; }
    if (b.fail500Times && b.fail500Times > 0) { b.fail500Times--; res.writeHead(500); res.end('server error'); return; }
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range && !b.ignoreRange) {
      start = Number(range[1]);
      if (start >= data.length) { res.writeHead(416, { 'content-range': `bytes */${data.length}` }); res.end(); return; }
      res.writeHead(206, { 'content-range': `bytes ${start}-${data.length - 1}/${data.length}`, 'content-length': data.length - start, 'accept-ranges': 'bytes', etag: '"v1"' });
    } else {
      res.writeHead(200, { 'content-length': data.length, 'accept-ranges': b.ignoreRange ? 'none' : 'bytes', etag: '"v1"' });
    }
    const cut = b.cutAfterBytes !== undefined && (b.cutTimes ?? 1) > 0 ? b.cutAfterBytes : undefined;
    if (cut !== undefined) b.cutTimes = (b.cutTimes ?? 1) - 1;
    let sent = 0;
    for (let p = start; p < data.length; p += 16384) {
      if (res.destroyed) return;
      const chunk = data.subarray(p, Math.min(data.length, p + 16384));
      if (cut !== undefined && sent + chunk.length > cut) {
        res.write(chunk.subarray(0, cut - sent));
        await new Promise((r) => setTimeout(r, 20));
        res.destroy();
        return;
      }
      sent += chunk.length;
      if (!res.write(chunk)) await new Promise((r) => res.once('drain', r));
      if (b.chunkDelayMs) await new Promise((r) => setTimeout(r, b.chunkDelayMs));
    }
    res.end();
  }
}
