/**
 * Where the settled part of a streaming reply ends: the start of the last line, at or after `from`,
 * that nothing still to come can change the rendering before. That is a line after a blank line,
 * outside any fenced code block, that starts in its first column (an indented one may continue a
 * list item or an indented code block). `from` must itself be such a line start (or 0).
 */
export function settledLength(text: string, from = 0): number {
  let settled = from;
  let fence: { char: string; length: number } | undefined;
  let afterBlank = false;
  let start = from;
  while (start < text.length) {
    const end = text.indexOf('\n', start);
    if (end < 0) {
      // The last line is still arriving; its first character is enough to place a boundary before it.
      if (!fence && afterBlank && /^\S/.test(text.slice(start, start + 1))) settled = start;
      break;
    }
    const line = text.slice(start, end);
    if (!fence && afterBlank && /^\S/.test(line)) settled = start;
    const marker = /^ {0,3}(`{3,}|~{3,})(.*)$/.exec(line);
    if (fence) {
      if (marker && marker[1]![0] === fence.char && marker[1]!.length >= fence.length && !marker[2]!.trim()) fence = undefined;
      afterBlank = false;
    } else {
      if (marker && !(marker[1]![0] === '`' && marker[2]!.includes('`'))) fence = { char: marker[1]![0]!, length: marker[1]!.length };
      afterBlank = !line.trim();
    }
    start = end + 1;
  }
  return settled;
}
