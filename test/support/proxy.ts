import http from 'node:http';
import net from 'node:net';

/**
 * A forward proxy on 127.0.0.1 that reaches only loopback: CONNECT tunnels (what undici sends, for
 * http targets too) and plain requests in absolute form (what Node's http agents send). Any host name
 * resolves to 127.0.0.1, so a download of http://some.name.test:PORT/… works only through it.
 * `seen` lists every request ("CONNECT host:port" or "GET http://…").
 */
export async function startLoopbackProxy(): Promise<{ url: string; seen: string[]; close: () => void }> {
  const seen: string[] = [];
  const proxy = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    let target: URL;
    try { target = new URL(req.url ?? ''); } catch { res.writeHead(400); res.end(); return; }
    const upstream = http.request({ host: '127.0.0.1', port: Number(target.port || 80), path: target.pathname + target.search, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    upstream.on('error', () => { res.writeHead(502); res.end(); });
    req.pipe(upstream);
  });
  proxy.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    seen.push(`CONNECT ${req.url}`);
    const upstream = net.connect(Number((req.url ?? '').split(':').at(-1)), '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`,
    seen,
    close: () => { proxy.closeAllConnections(); proxy.close(); },
  };
}
