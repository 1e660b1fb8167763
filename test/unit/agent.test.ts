import assert from 'node:assert/strict';
import path from 'node:path';
import { readRange, resolveInWorkspace, searchText, selectTools, toolCost, type AgentTool } from '../../src/core/agent/workspace';
import vscodeTools from '../../src/core/bench/vscodeTools.json';

describe('agent: workspace tools and tool selection', () => {
  const root = path.resolve('/work/project');

  it('resolves paths inside the workspace folders and refuses anything outside', () => {
    assert.equal(resolveInWorkspace([root], 'src/a.ts'), path.join(root, 'src', 'a.ts'));
    assert.equal(resolveInWorkspace([root], ''), root);
    assert.equal(resolveInWorkspace([root], `${root}/x.py`), path.join(root, 'x.py'));
    assert.equal(resolveInWorkspace([root, '/work/other'], 'other/b.ts'), '/work/other/b.ts', 'a multi-root path by folder name');
    for (const bad of ['../secret', '/etc/passwd', 'src/../../x', '/work/project-evil/x']) {
      assert.throws(() => resolveInWorkspace([root], bad), /outside the workspace/, bad);
    }
    assert.throws(() => resolveInWorkspace([], 'a'), /No folder is open/);
  });

  it('reads a range of lines, bounded, and says what is left', () => {
    const text = Array.from({ length: 500 }, (_, i) => `line ${i + 1}`).join('\n') + '\n';
    assert.deepEqual(readRange(text, 10, 12), { text: 'line 10\nline 11\nline 12', from: 10, to: 12, total: 500, truncated: false });
    const whole = readRange(text);
    assert.deepEqual([whole.from, whole.to, whole.truncated], [1, 200, true]);
    assert.deepEqual([readRange(text, 499, 900).to, readRange(text, 900).from], [500, 500]);
    const wide = readRange('x'.repeat(50_000));
    assert.ok(wide.truncated && wide.text.length === 12_000);
  });

  it('searches lines as text or regular expression', () => {
    assert.deepEqual(searchText('a = 1\nB = 2\nab = 3', 'A', false, 10).map((m) => m.line), [1, 3]);
    assert.deepEqual(searchText('a = 1\nB = 2\nab = 3', '^b', true, 10).map((m) => m.line), [2]);
    assert.equal(searchText('x\nx\nx', 'x', false, 2).length, 2);
  });

  describe('selecting tools for a small context (VS Code 1.139.1\'s 27 tools)', () => {
    const own: AgentTool[] = ['nanochat_readFile', 'nanochat_listFolder'].map((name) => ({ name, description: `${name} in the workspace`, parameters: { type: 'object', properties: { path: { type: 'string' } } }, own: true }));
    const theirs: AgentTool[] = (vscodeTools as Array<{ name: string; description?: string; inputSchema?: object }>).map((t) => ({ name: t.name, description: t.description, parameters: t.inputSchema, own: false }));
    const all = [...theirs, ...own];

    it('keeps its own tools and the referenced ones, adds relevant ones while they fit, sorted by name', () => {
      const whole = all.reduce((n, t) => n + toolCost(t), 0);
      assert.ok(whole > 8000, `the whole list is about ${whole} tokens`);
      const picked = selectTools(all, 'run the tests in the terminal', ['renderMermaidDiagram'], 1365);
      const names = picked.map((t) => t.name);
      assert.ok(names.includes('nanochat_readFile') && names.includes('nanochat_listFolder') && names.includes('renderMermaidDiagram'));
      assert.ok(names.some((n) => /terminal|test/i.test(n)), names.join(', '));
      assert.deepEqual(names, [...names].sort((a, b) => a.localeCompare(b)));
      assert.ok(picked.filter((t) => !t.own && t.name !== 'renderMermaidDiagram').reduce((n, t) => n + toolCost(t), 0) <= 1365);
      assert.deepEqual(selectTools(all, 'run the tests in the terminal', ['renderMermaidDiagram'], 1365), picked, 'the same request, the same preamble');
    });

    it('offers nothing else when nothing matches the request', () => {
      assert.deepEqual(selectTools(all, 'hello', [], 4000).map((t) => t.name), ['nanochat_listFolder', 'nanochat_readFile']);
    });
  });
});
