/**
 * A long assistant reply as a coding model writes one: sections with headings, paragraphs with inline
 * markup, bullet and numbered lists, and code blocks (a third of them without a language, which the
 * panel then detects; those have blank lines between functions). Deterministic, no two sections alike, at least `chars` characters.
 */
export function longReply(chars: number): string {
  const parts: string[] = [];
  let length = 0;
  for (let n = 1; length < chars; n++) {
    const section = [
      `## Section ${n}: step ${n} of the pipeline`,
      '',
      `Step ${n} reads the **input** from \`stage${n - 1}\`, checks each item and passes it on. See [the guide](https://example.com/guide/${n}) for the details; the *short* version follows.`,
      '',
      `- the reader takes item ${n} and its ${n % 7} neighbours`,
      `- the checker rejects anything over ${n * 100} bytes`,
      `- the writer keeps the order of \`stage${n}\``,
      '',
      ...codeBlock(n),
      '',
      `1. Run \`make stage${n}\`.`,
      `2. Compare the output with \`expected/${n}.txt\`.`,
      '3. Commit both.',
      '',
      `That is all step ${n} needs: the next one builds on it.`,
      '',
    ].join('\n');
    parts.push(section);
    length += section.length + 1;
  }
  return parts.join('\n');
}

function codeBlock(n: number): string[] {
  const lines = 24 + (n % 5) * 8;
  switch (n % 3) {
    // Blank lines between functions, each followed by one in the first column: only the fence says it is still code.
    case 0: return ['```', ...Array.from({ length: lines }, (_, i) => i % 4 === 0 ? `${i ? '\n' : ''}def step_${n}_${i}(value):` : `    total_${i} = value * ${i} + max(0, value - ${n}) # keep ${i}`), '```'];
    case 1: return ['```ts', ...Array.from({ length: lines }, (_, i) => i % 4 === 0 ? `export function step${n}x${i}(value: number): number {` : i % 4 === 3 ? '}' : `  const next${i} = value * ${i} + Math.max(0, value - ${n});`), '```'];
    default: return ['```python', ...Array.from({ length: lines }, (_, i) => i % 4 === 0 ? `class Stage${n}x${i}:` : `    limit_${i} = ${n * i}  # bytes`), '```'];
  }
}
