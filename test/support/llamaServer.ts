import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { llamaCppBin } from '../../tools/llamaCpp.mjs';

/** A real llama-server (built from the bundled llama.cpp) on 127.0.0.1, for the server backend's tests. */
export class LlamaServer {
  private process: ChildProcess | undefined;
  private output = '';
  port = 0;

  constructor(private readonly model: string, private readonly extraArgs: string[] = []) {}

  get url(): string { return `http://127.0.0.1:${this.port}/v1`; }
  get origin(): string { return `http://127.0.0.1:${this.port}`; }

  async start(port?: number): Promise<this> {
    this.port = port ?? await freePort();
    const bin = llamaCppBin({ build: true }) as string;
    this.output = '';
    const child = spawn(path.join(bin, 'llama-server'), ['-m', this.model, '--host', '127.0.0.1', '--port', String(this.port),
      '--parallel', '4', '-c', '4096', '-t', '1', '--no-webui', ...this.extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.process = child;
    child.stdout!.on('data', (d) => { this.output += d; });
    child.stderr!.on('data', (d) => { this.output += d; });
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`llama-server exited with ${child.exitCode}:\n${this.output.slice(-2000)}`);
      const ok = await fetch(`${this.origin}/health`).then((r) => r.ok, () => false);
      if (ok) return this;
      if (Date.now() > deadline) throw new Error(`llama-server did not become healthy:\n${this.output.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Kills the server at once (a server that dies mid-stream). */
  kill(): Promise<void> {
    const child = this.process;
    if (!child || child.exitCode !== null) return Promise.resolve();
    return new Promise((resolve) => { child.once('exit', () => resolve()); child.kill('SIGKILL'); });
  }

  async stop(): Promise<void> {
    const child = this.process;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => { child.once('exit', () => resolve()); child.kill('SIGTERM'); setTimeout(() => child.kill('SIGKILL'), 5000).unref(); });
  }

  async slots(): Promise<Array<{ id: number; is_processing: boolean }>> {
    return (await fetch(`${this.origin}/slots`)).json() as Promise<Array<{ id: number; is_processing: boolean }>>;
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}
