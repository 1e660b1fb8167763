import * as vscode from 'vscode';
import type { TokenBias } from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import type { ChatMessage, ReplyStats } from '../core/chat/engine';
import type { ToolDefinition } from '../core/chat/tools';
import { selectTools, type AgentTool } from '../core/agent/workspace';
import { Emitter } from '../core/events';
import { NanochatError, NoModelError, errorMessage } from '../core/errors';
import { formatBytes } from '../core/modelFiles/ggufCheck';
import { COMMANDS, type Services } from './services';
import { collectReferences } from './references';
import { abortOn } from './cancellation';
import { ServerError } from '../core/server/serverBackend';
import { engineLabel, type TokenCount } from '../core/tokens/tokenCounter';
import { footer, historyFromTurns, isNanochatMetadata, type NanochatResultMetadata, type TurnView } from './chatHistory';
import type { Benchmarks } from './bench';
import { benchRows, benchTitle, formatChange, formatValue } from '../core/bench/report';

export const PARTICIPANT_ID = 'nanochat.chat';

export interface HandledRequest { prompt: string; command?: string; text: string; stats?: ReplyStats; error?: string; sent?: ChatMessage[] }

/** @nanochat: streams the local model's reply into the Chat view, with slash commands. */
export function registerParticipant(services: Services, bench: Benchmarks): { participant: vscode.ChatParticipant; handler: vscode.ChatRequestHandler; onDidHandle: vscode.Event<HandledRequest>; hooks: ParticipantHooks } & vscode.Disposable {
  const handled = new Emitter<HandledRequest>();
  const handler: vscode.ChatRequestHandler = async (request, context, stream, token) => {
    let text = '';
    const sink = { markdown: (s: string) => { text += s; stream.markdown(s); } };
    try {
      switch (request.command) {
        case 'model': await describeModel(services, stream); break;
        case 'tokens': await countPromptTokens(services, request, stream); break;
        case 'bench': await quickBench(services, bench, stream, token); break;
        default: {
          const answered = await answer(services, request, context, stream, sink, token);
          handled.fire({ prompt: request.prompt, command: request.command, text, stats: answered?.stats, sent: answered?.sent });
          if (!answered) return {};
          const metadata: NanochatResultMetadata = { nanochat: { prompt: answered.sent.at(-1)!.content, reply: answered.reply, stats: answered.stats } };
          return { metadata };
        }
      }
      handled.fire({ prompt: request.prompt, command: request.command, text });
      return {};
    } catch (err) {
      const message = errorMessage(err);
      if (!(err instanceof NanochatError)) services.log.error(err instanceof Error ? err : message);
      explainFailure(stream, err);
      handled.fire({ prompt: request.prompt, command: request.command, text, error: message });
      return { errorDetails: err instanceof NanochatError ? undefined : { message } };
    }
  };
  const participant = vscode.chat.createChatParticipant(PARTICIPANT_ID, handler);
  participant.iconPath = vscode.Uri.joinPath(services.context.extensionUri, 'media', 'nanochat.png');
  participant.followupProvider = {
    provideFollowups(result) {
      const stats = isNanochatMetadata(result.metadata) ? result.metadata.nanochat.stats : undefined;
      const followups: vscode.ChatFollowup[] = [];
      if (stats?.stopReason === 'maxTokens') followups.push({ prompt: 'Continue', label: 'Continue the answer' });
      if (stats) followups.push({ prompt: '', command: 'tokens', label: 'Count tokens of this prompt' });
      return followups;
    },
  };
  return {
    participant, handler, onDidHandle: handled.event, hooks,
    dispose: () => { participant.dispose(); handled.dispose(); },
  };
}

async function answer(services: Services, request: vscode.ChatRequest, context: vscode.ChatContext,
  stream: vscode.ChatResponseStream, sink: { markdown(s: string): void }, token: vscode.CancellationToken): Promise<{ stats: ReplyStats; sent: ChatMessage[]; reply: string } | undefined> {
  const settings = services.settings.current;
  const model = await services.backend.prepare();
  if (services.backend.kind === 'embedded' && services.models.state.kind !== 'ready') stream.progress('Loading model…');
  // Counting needs the tokenizer only; the reply below is the one place the model is acquired.
  const count = (text: string) => services.backend.countTokens(text).then((c) => c.tokens);
  const references = await collectReferences(request, count, Math.floor(model.contextSize / 3));
  let prompt = request.prompt.trim();
  if (request.command === 'explain') {
    if (!references.text) {
      sink.markdown('Select some code in an editor, or reference a file with `#file`, and ask again with `/explain`.');
      return undefined;
    }
    prompt = `Explain what the following code does, step by step.${prompt ? ` ${prompt}` : ''}`;
  }
  const content = references.text ? `${prompt}\n\n${references.text}` : prompt;
  const sent: ChatMessage[] = [...historyFromTurns(context.history.map(turnView), PARTICIPANT_ID, settings.maxHistoryMessages), { role: 'user', content }];
  for (const ref of references.used) stream.reference(ref);
  const cancel = abortOn(token);
  try {
    let thinking = false;
    // Thoughts stay out of the answer (and so out of the history); the Chat view shows that the model is thinking.
    const onThought = () => { if (!thinking) { thinking = true; stream.progress('Thinking…'); } };
    // The agent loop: the model may call tools (nanochat's workspace tools, the ones referenced with #,
    // and others that fit); VS Code runs them (with its confirmations) and the results go back, up to
    // nanochat.agent.maxSteps times. Without tools in the model's template, it is a plain reply.
    const tools = await agentTools(services, request, prompt, model.contextSize);
    let messages = sent;
    let replyText = '';
    let stats: ReplyStats;
    for (let step = 0; ; step++) {
      const reply = services.backend.reply({ messages }, { onThought, ...(tools.length ? { tools, maxToolCalls: 1 } : {}), tokenBias: hooks.steer?.(step) }, cancel.signal);
      let stepText = '';
      for await (const delta of reply) { stepText += delta; sink.markdown(delta); }
      replyText += stepText;
      stats = await reply.stats;
      if (!stats.toolCalls?.length || cancel.signal.aborted) break;
      if (step >= settings['agent.maxSteps']) {
        sink.markdown(`\n\n*Stopped after ${step} tool step${step === 1 ? '' : 's'} (nanochat.agent.maxSteps). Ask again to go on.*`);
        break;
      }
      const calls = [];
      for (const call of stats.toolCalls) {
        if (token.isCancellationRequested) break;
        stream.progress(`Step ${step + 1}: ${call.name}(${shortArgs(call.params)})`);
        calls.push({ ...call, result: await invokeTool(call.name, call.params, request.toolInvocationToken, token) });
      }
      if (token.isCancellationRequested) break;
      messages = [...messages, { role: 'assistant', content: stepText, toolCalls: calls }];
      if (stepText) sink.markdown('\n\n');
    }
    if (stats.stopReason === 'error') sink.markdown(`\n\n*The model stopped with an error: ${stats.error}*`);
    stream.markdown(`\n\n*${footer(stats)}*`);
    return { stats, sent, reply: replyText };
  } finally {
    cancel.dispose();
  }
}

/** Test hooks: steer the model's sampling at each agent step (random-weight models call no tools by themselves). */
export interface ParticipantHooks { steer?: (step: number) => (() => TokenBias) | undefined }
const hooks: ParticipantHooks = {};

/**
 * The tools of one request: none when the model's template cannot show tools (it would only see them in
 * node-llama-cpp's generic format) or nanochat.agent.maxSteps is 0; else a selection that fits a third
 * of the context (see selectTools).
 */
async function agentTools(services: Services, request: vscode.ChatRequest, prompt: string, contextSize: number): Promise<ToolDefinition[]> {
  if (services.settings.current['agent.maxSteps'] <= 0) return [];
  if (services.backend.kind === 'embedded') {
    let loaded = services.models.model;
    if (!loaded) {
      const lease = await services.models.acquire();
      lease.dispose();
      loaded = lease.model;
    }
    if (loaded.info.chatTemplate !== 'with tools') return [];
  }
  const referenced = (request.toolReferences ?? []).map((r) => r.name);
  const all: AgentTool[] = vscode.lm.tools.map((t) => ({
    name: t.name, description: t.description, parameters: t.inputSchema as object | undefined, tags: t.tags, own: t.name.startsWith('nanochat_'),
  }));
  return selectTools(all, prompt, referenced, Math.floor(contextSize / 3)).map(({ name, description, parameters }) => ({ name, description, parameters }));
}

/** Runs a tool through VS Code (which shows its confirmation where the tool asks for one); the text of its result, bounded. */
async function invokeTool(name: string, params: unknown, toolInvocationToken: vscode.ChatParticipantToolToken | undefined, token: vscode.CancellationToken): Promise<string> {
  try {
    const result = await vscode.lm.invokeTool(name, { input: (params && typeof params === 'object' ? params : {}) as object, toolInvocationToken }, token);
    const text = result.content.map((p) => (p instanceof vscode.LanguageModelTextPart ? p.value : '')).join('');
    return text.length > 16_000 ? `${text.slice(0, 16_000)}\n… (cut at 16,000 characters)` : text;
  } catch (err) {
    return `Error: ${errorMessage(err)}`;
  }
}

function shortArgs(params: unknown): string {
  const text = params && typeof params === 'object' ? Object.values(params as Record<string, unknown>).map((v) => JSON.stringify(v)).join(', ') : '';
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}

function turnView(turn: vscode.ChatRequestTurn | vscode.ChatResponseTurn): TurnView {
  return turn instanceof vscode.ChatRequestTurn
    ? { kind: 'request', participant: turn.participant, prompt: turn.prompt }
    : { kind: 'response', participant: turn.participant, metadata: turn.result.metadata };
}

function explainFailure(stream: vscode.ChatResponseStream, err: unknown): void {
  if (err instanceof NoModelError) {
    stream.markdown('**No model yet.** nanochat runs a small language model on this machine, with no account and no network once the model is on disk. Download one, or use a GGUF file you already have.');
  } else {
    stream.markdown(`**nanochat could not answer.** ${errorMessage(err)}`);
  }
  if (err instanceof ServerError) {
    if (err.problem === 'unauthorized') stream.button({ command: COMMANDS.setServerKey, title: 'Set server API key…' });
    stream.button({ command: 'workbench.action.openSettings', title: 'Server settings', arguments: ['nanochat.server'] });
    stream.button({ command: COMMANDS.showLogs, title: 'Show logs' });
    return;
  }
  stream.button({ command: COMMANDS.download, title: 'Download a model' });
  stream.button({ command: COMMANDS.useLocal, title: 'Use a local GGUF file…' });
  if (!(err instanceof NoModelError)) stream.button({ command: COMMANDS.showLogs, title: 'Show logs' });
}

async function describeModel(services: Services, stream: vscode.ChatResponseStream): Promise<void> {
  if (services.backend.kind === 'server') {
    const server = services.server.state;
    const model = services.backend.selectedModel();
    stream.markdown(server.kind === 'connected'
      ? `**${model?.name ?? server.model}** on the server ${server.url} (${model?.contextSize ?? '?'} tokens of context, ${server.latencyMs} ms away).\n`
      : server.kind === 'unreachable' || server.kind === 'unauthorized' ? `The server is not usable: ${server.message}\n` : 'No server is connected yet.\n');
    stream.button({ command: COMMANDS.select, title: 'Switch model…' });
    stream.button({ command: COMMANDS.setServerKey, title: 'Set server API key…' });
    return;
  }
  const state = services.models.state;
  if (state.kind === 'ready') {
    const i = state.info;
    stream.markdown([
      `**${i.name}** is loaded.\n`,
      '| | |', '|---|---|',
      `| File | \`${i.path}\` |`,
      `| Size | ${formatBytes(i.sizeBytes)} |`,
      `| Architecture | ${i.architecture}${i.parameters ? `, ${formatCount(i.parameters)} parameters` : ''} |`,
      `| Context | ${i.contextSize} tokens (trained for ${i.trainContextSize ?? '?'}) |`,
      `| Threads | ${i.threads} |`,
      `| Backend | ${i.backend}${i.backend === 'cpu' ? '' : ` (${i.gpuLayers}/${i.totalLayers} layers offloaded)`} |`,
      `| Load time | ${i.loadMs} ms |`, '',
    ].join('\n'));
  } else if (state.kind === 'error') {
    stream.markdown(`The model could not be loaded: ${state.error.message}\n`);
  } else if (state.kind === 'loading') {
    stream.markdown(`Loading **${state.name}** (${Math.round(state.progress * 100)}%).\n`);
  } else {
    const selected = services.models.selectedPath;
    stream.markdown(selected ? `\`${selected}\` is selected and loads with the next message.\n` : 'No model is selected.\n');
  }
  stream.button({ command: COMMANDS.select, title: 'Switch model…' });
  stream.button({ command: COMMANDS.download, title: 'Download a model…' });
}

async function countPromptTokens(services: Services, request: vscode.ChatRequest, stream: vscode.ChatResponseStream): Promise<void> {
  const model = await services.backend.prepare();
  // Counting needs the tokenizer only: the model's weights are not loaded for it.
  let engine: TokenCount['engine'] = 'js';
  const count = async (text: string) => { const c = await services.backend.countTokens(text); engine = c.engine; return c.tokens; };
  const references = await collectReferences(request, count, Number.MAX_SAFE_INTEGER);
  const rows = [['Prompt', request.prompt], ...references.parts.map((p) => [p.label, p.text])].filter(([, t]) => t.length > 0);
  if (rows.length === 0) {
    stream.markdown('Nothing to count: type some text after `/tokens`, select code, or reference a file with `#file`.');
    return;
  }
  const counted = await Promise.all(rows.map(async ([label, t]) => ({ label, chars: t.length, tokens: await count(t) })));
  const total = counted.reduce((n, r) => n + r.tokens, 0);
  const contextSize = model.contextSize;
  stream.markdown([
    `| Source | Tokens | Characters |`, '|---|---:|---:|',
    ...counted.map((r) => `| ${r.label} | ${r.tokens} | ${r.chars} |`),
    `| **Total** | **${total}** | ${counted.reduce((n, r) => n + r.chars, 0)} |`, '',
    `${(100 * total / contextSize).toFixed(1)}% of the ${contextSize}-token context, counted with the ${engineLabel(engine)} of ${model.name}.`,
  ].join('\n'));
}

/** `/bench`: the quick benchmark of the shared core, in its own process; the numbers that matter, and the full report a click away. */
async function quickBench(services: Services, bench: Benchmarks, stream: vscode.ChatResponseStream, token: vscode.CancellationToken): Promise<void> {
  if (!services.models.selectedPath) throw new NoModelError();
  stream.progress('Running a quick benchmark in a separate process…');
  const { report, previous } = await bench.run({ quick: true }, token, (step) => stream.progress(`Benchmark: ${step}…`));
  const wanted = new Set(['Total', 'Generation (median)', 'Prompt processing', 'Speed-up from reuse', 'Cancel (median)', 'JS ÷ llama.cpp', 'RSS after load']);
  const rows = benchRows(report, previous).filter((r) => wanted.has(r.label) || r.label.startsWith('First token, short'));
  stream.markdown([
    `**${benchTitle(report)}**, medians of ${report.runs} runs${previous ? ', compared with the previous run' : ''}:`, '',
    previous ? '| Measurement | Value | Change |' : '| Measurement | Value |', previous ? '|---|---:|---|' : '|---|---:|',
    ...rows.map((r) => `| ${r.section === 'Cold start' ? 'Cold start' : r.label} | ${formatValue(r.value, r.unit)} |${previous ? ` ${formatChange(r)} |` : ''}`),
    '',
  ].join('\n'));
  stream.button({ command: COMMANDS.showBenchReport, title: 'Open the full report' });
}

function formatCount(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(1)}B` : n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : `${Math.round(n / 1e3)}K`;
}
