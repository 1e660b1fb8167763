/** Names under which secrets live in VS Code's SecretStorage (never in settings, never in the log). */
export const HF_TOKEN_SECRET = 'nanochat.huggingFaceToken';

/** A server's API key lives under its origin: it is sent to that origin only, and a changed URL asks again. */
export function serverKeySecret(origin: string): string {
  return `nanochat.serverApiKey:${origin}`;
}
