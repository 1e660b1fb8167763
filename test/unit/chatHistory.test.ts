import assert from 'node:assert/strict';
import type { ReplyStats } from '../../src/core/chat/engine';
import { footer, historyFromTurns, isNanochatMetadata, type TurnView } from '../../src/vscode/chatHistory';

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
