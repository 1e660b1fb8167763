import assert from 'node:assert/strict';
import MarkdownIt from 'markdown-it';
import { settledLength } from '../../webview/settled';
import { longReply } from '../support/longReply';

describe('the settled part of a streaming reply (webview/settled.ts)', () => {
  const md = new MarkdownIt({ html: false, linkify: true });

  it('at every point of a long reply, ends where rendering it apart from the rest changes nothing', () => {
    const full = longReply(12_000);
    const whole = md.render(full);
    let from = 0;
    let boundaries = 0;
    for (let cut = 1; cut <= full.length; cut += 7) {
      const shown = full.slice(0, cut);
      const settled = settledLength(shown, from);
      assert.ok(settled >= from && settled <= cut, `cut ${cut}: ${settled} outside ${from}..${cut}`);
      assert.equal(settled, settledLength(shown), `cut ${cut}: continuing from ${from} found another boundary than a scan from the start`);
      if (settled > from) {
        boundaries++;
        assert.equal(md.render(full.slice(0, settled)) + md.render(full.slice(settled)), whole, `cut ${cut}: the boundary at ${settled} splits a block: ${JSON.stringify(full.slice(settled - 40, settled + 40))}`);
      }
      from = settled;
    }
    // Each section has a heading, paragraphs, a list, a code block and another list and paragraph after blank lines.
    const sections = full.split('\n').filter((l) => l.startsWith('## ')).length;
    assert.ok(boundaries >= 4 * sections, `only ${boundaries} boundaries in ${sections} sections: the reply hardly settled`);
  });

  it('never ends inside a fenced code block, nor before an indented line or a partly received one that is indented', () => {
    const cases: Array<[string, string]> = [
      // [text, what must stay unsettled]
      ['Intro\n\n```\ncode\n\nnot a paragraph\n', '```\ncode\n\nnot a paragraph\n'],
      ['Intro\n\n~~~ts\na\n\n```\nstill code\n', '~~~ts\na\n\n```\nstill code\n'],
      ['Intro\n\n````\na\n\n```\nstill code (a shorter fence does not close it)\n', '````\na\n\n```\nstill code (a shorter fence does not close it)\n'],
      ['1. item\n\n   more of the item', '1. item\n\n   more of the item'],
      ['Para\n\n    indented code\n\n    more code', 'Para\n\n    indented code\n\n    more code'],
      ['Para\n\n ', 'Para\n\n '],
      ['Para\n\nNext', 'Next'],
      ['Para\n\n```\ncode\n```\n\nAfter', 'After'],
      ['Para\n\n``` not a fence because of ` this\n\nAfter', 'After'],
    ];
    for (const [text, rest] of cases) assert.equal(text.slice(settledLength(text)), rest, JSON.stringify(text));
  });
});
