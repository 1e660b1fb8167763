import assert from 'node:assert/strict';
import type { ReplyStats } from '../../src/core/chat/engine';
import { footer, historyFromTurns, isNanochatMetadata, type TurnView } from '../../src/vscode/chatHistory';
import { conversationFrom } from '../../src/vscode/lmConversation';
import { cutCheckpoints, historyCut } from '../../src/core/chat/engine';

const stats: ReplyStats = { model: 'm', promptTokens: 10, evaluatedPromptTokens: 3, completionTokens: 5, timeToFirstTokenMs: 12, tokensPerSecond: 40, totalMs: 50, stopReason: 'maxTokens', droppedMessages: 2 };

describe('@nanochat history (pure adapter logic)', () => {
  const me = 'nanochat.chat';
  const answered = (prompt: string, reply: string): TurnView[] => [
    { kind: 'request', participant: me, prompt: prompt.split('\n')[0] },
    { kind: 'response', participant: me, metadata: { nanochat: { prompt, reply, stats } } },
  ];

  it('rebuilds each answered turn from its metadata: the message as sent (references included), the reply without footer', () => {
    const turns = [...answered('What does this do?\n\n```py\ndef add(a, b): ...\n```', 'It adds.'), ...answered('And returns?', 'A number.')];
    assert.deepEqual(historyFromTurns(turns, me, 10), [
      { role: 'user', content: 'What does this do?\n\n```py\ndef add(a, b): ...\n```' },
      { role: 'assistant', content: 'It adds.' },
      { role: 'user', content: 'And returns?' },
      { role: 'assistant', content: 'A number.' },
    ]);
  });

  it('skips other participants, slash commands and failed turns (no metadata), and keeps the newest messages', () => {
    const turns: TurnView[] = [
      { kind: 'request', participant: 'other', prompt: 'x' }, { kind: 'response', participant: 'other', metadata: { nanochat: { prompt: 'x', reply: 'y' } } },
      { kind: 'request', participant: me, prompt: '/tokens' }, { kind: 'response', participant: me, metadata: undefined },
      { kind: 'request', participant: me, prompt: 'broken' }, { kind: 'response', participant: me, metadata: { nanochat: { prompt: 42 } } },
      ...answered('one', '1'), ...answered('two', '2'),
    ];
    assert.deepEqual(historyFromTurns(turns, me, 3).map((m) => m.content), ['1', 'two', '2']);
    assert.deepEqual(historyFromTurns(turns, me, 0), []);
    assert.equal(isNanochatMetadata({ nanochat: { prompt: 'a', reply: '' } }), true);
    assert.equal(isNanochatMetadata({ stats }), false);
  });

  it('writes a footer with the reply\'s figures and why it stopped', () => {
    assert.equal(footer(stats), '5 tokens · 40.0 tok/s · first token 12 ms · stopped at max tokens · 2 older messages left out · m');
  });
});

describe('model-provider messages as a conversation (pure adapter logic)', () => {
  const text = (value: string) => ({ kind: 'text' as const, value });

  it('maps roles, merges runs of one role and adds "Continue." when the last word is not the user\'s', () => {
    const c = conversationFrom([
      { role: 'system', parts: [text('Be brief.')] },
      { role: 'user', parts: [text('Hello')] }, { role: 'user', parts: [text('there')] },
      { role: 'assistant', parts: [text('Hi!')] },
    ]);
    assert.equal(c.id, undefined, 'no thread is keyed by its text');
    assert.deepEqual(c.messages, [
      { role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello\n\nthere' }, { role: 'assistant', content: 'Hi!' }, { role: 'user', content: 'Continue.' },
    ]);
  });

  it('pairs tool calls with their results by call id, and lets the model continue after them', () => {
    const c = conversationFrom([
      { role: 'user', parts: [text('Weather in Paris?')] },
      { role: 'assistant', parts: [{ kind: 'toolCall', callId: 'call-1', name: 'getWeather', input: { city: 'Paris' } }] },
      { role: 'user', parts: [{ kind: 'toolResult', callId: 'call-1', text: 'sunny, 21 C' }] },
    ]);
    assert.deepEqual(c.messages.map((m) => m.role), ['user', 'assistant']);
    assert.deepEqual(c.messages[1].toolCalls, [{ id: 'call-1', name: 'getWeather', params: { city: 'Paris' }, result: 'sunny, 21 C' }]);
    const unanswered = conversationFrom([{ role: 'user', parts: [text('x')] }, { role: 'assistant', parts: [{ kind: 'toolCall', callId: 'c', name: 'f', input: {} }] }]);
    assert.equal(unanswered.messages.at(-1)!.content, 'Continue.', 'a call without a result is not continued');
    const stray = conversationFrom([{ role: 'user', parts: [{ kind: 'toolResult', callId: 'unknown', text: 'orphan result' }] }]);
    assert.equal(stray.messages[0].content, 'orphan result', 'a result without its call is kept as text');
  });
});

describe('history trimming', () => {
  it('keeps at most the limit, cuts whole exchanges, and moves the cut in steps so the start holds for several turns', () => {
    for (const limit of [2, 4, 10, 20]) {
      let starts = 0;
      let previous = -1;
      for (let messages = 0; messages <= 60; messages += 2) {
        const cut = historyCut(messages, limit);
        assert.ok(messages - cut <= Math.max(limit, 0) && cut % 2 === 0 && cut >= 0, `${messages} messages, limit ${limit}: cut ${cut}`);
        if (messages <= limit) assert.equal(cut, 0);
        if (cut !== previous) { starts++; previous = cut; }
      }
      if (limit >= 4) assert.ok(starts <= 1 + Math.ceil((60 - limit) / 4), `limit ${limit}: the start moved ${starts} times in 30 turns`);
    }
  });
});

describe('history cut checkpoints', () => {
  const msg = (role: 'user' | 'assistant', n: number) => ({ role, content: 'x'.repeat(n) });
  const size = (m: { content: string }) => m.content.length;

  it('cuts each quarter window of tokens, at the start of an exchange, then everything', () => {
    const earlier = [msg('user', 40), msg('assistant', 60), msg('user', 40), msg('assistant', 60), msg('user', 40), msg('assistant', 60)];
    // (40+4) + (60+4) = 108 ≥ 100: the first cut after message 1, at the next user message (2).
    assert.deepEqual(cutCheckpoints(earlier, size, 100), [2, 4, 6]);
  });

  it('keeps its cuts when the conversation grows, so a cut prefix stays cached', () => {
    const earlier = Array.from({ length: 20 }, (_, i) => msg(i % 2 ? 'assistant' : 'user', 10 + (i * 7) % 30));
    const before = cutCheckpoints(earlier, size, 64);
    const after = cutCheckpoints([...earlier, msg('user', 25), msg('assistant', 33)], size, 64);
    assert.deepEqual(after.slice(0, before.length - 1), before.slice(0, -1), 'the same checkpoints, and more after them');
    for (const cut of after.slice(0, -1)) assert.equal([...earlier, msg('user', 1)][cut]?.role, 'user');
  });
});
