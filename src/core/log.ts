/** The logging surface the core writes to; the extension backs it with the "Nanochat" LogOutputChannel. */
export interface Logger {
  trace(message: string): void;
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string | Error): void;
}

export const silentLogger: Logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

export function consoleLogger(prefix = '[nanochat]'): Logger {
  const out = (level: string) => (m: string | Error) => console.error(`${prefix} ${level} ${m instanceof Error ? m.stack ?? m.message : m}`);
  return { trace() {}, debug() {}, info: out('info'), warn: out('warn'), error: out('error') };
}
