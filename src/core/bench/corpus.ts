/**
 * A mixed corpus for tokenizer agreement tests and benchmarks: source code in several languages,
 * whitespace runs, and Unicode that tokenizers get wrong first (emoji sequences, CJK, combining
 * marks, right-to-left scripts, zero-width characters).
 */
export const CORPUS_PIECES: string[] = [
  'function fibonacci(n) {\n  if (n < 2) return n;\n  return fibonacci(n - 1) + fibonacci(n - 2);\n}\nconsole.log(`fib(10) = ${fibonacci(10)}`);\n',
  'def quicksort(xs: list[int]) -> list[int]:\n    """Sort a list."""\n    if len(xs) <= 1:\n        return xs\n    pivot, *rest = xs\n    return quicksort([x for x in rest if x < pivot]) + [pivot] + quicksort([x for x in rest if x >= pivot])\n',
  'fn main() -> Result<(), Box<dyn std::error::Error>> {\n    let v: Vec<u64> = (1..=10).map(|x| x * x).collect();\n    println!("{:?}", v);\n    Ok(())\n}\n',
  '#include <stdio.h>\nint main(void) {\n\tfor (int i = 0; i < 10; ++i) printf("%d\\n", i);\n\treturn 0;\n}\n',
  '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Test &amp; more</title></head>\n<body class="main"><p id=\'x\'>Hello, <b>world</b>!</p></body></html>\n',
  'SELECT u.id, COUNT(*) AS n FROM users u JOIN orders o ON o.user_id = u.id WHERE o.total > 100.50 GROUP BY u.id HAVING n >= 3;\n',
  '{"name": "nanochat", "version": "0.1.0", "tags": ["llm", "local"], "nested": {"a": [1, 2.5, -3e10, null, true]}}\n',
  'package main\n\nimport "fmt"\n\nfunc main() {\n\tch := make(chan int, 3)\n\tgo func() { ch <- 42 }()\n\tfmt.Println(<-ch)\n}\n',
  '    four spaces\n\ttab\t\ttabs\n\n\n\nblank lines\r\nwindows line\r\n        eight spaces then text   trailing spaces   \n \n  \t \n',
  "It's a test: don't, won't, they're, we've, I'm, you'll, he'd. IT'S LOUD. 'quoted' \"double\" — em dash – en dash … ellipsis",
  'Numbers: 0 7 42 123 1234 12345 3.14159 1,000,000 1e-9 0xFF 0b1010 2026-11-22 12:34:56 +1 (555) 010-9999',
  'Emoji: 😀 😁😂 👍🏽 👩‍💻 👨‍👩‍👧‍👦 🏳️‍🌈 🇫🇷🇯🇵 ❤️ ✔︎ ☕ 🦀🐍 1️⃣ #️⃣',
  'CJK: 你好，世界！这是一个测试。日本語のテキストとカタカナ、ひらがな。한국어 문장도 있습니다. 繁體中文與简体中文。',
  'Combining: e\u0301 a\u0300 n\u0303 o\u0308 (NFD) vs é à ñ ö (NFC); Devanagari: नमस्ते दुनिया; Thai: สวัสดีชาวโลก; Zalgo: H\u0336\u0335e\u0337l\u0338l\u0335o\u0334',
  'RTL: مرحبا بالعالم — هذا اختبار. עברית: שלום עולם! Mixed: hello שלום 123 مرحبا.',
  'Math & symbols: ∑ᵢ xᵢ² ≤ ∞, ∀x ∈ ℝ: x ≥ 0 ⇒ √x ∈ ℝ; α β γ Δ Ω; ½ ¾ ² ³; © ® ™ € £ ¥ ₹ § ¶ • ° ± × ÷',
  'Zero-width: a\u200bb c\u200dd e\ufefff soft\u00adhyphen; non-breaking\u00a0space; ideographic\u3000space; narrow\u202fspace',
  'Greek and Cyrillic: Καλημέρα κόσμε, ἀρχὴ ὥρα ῥῆμα; Привет, мир! Ёлка, ЁЛКА. Ѣ ѣ Ѳ ѳ',
  'URLs and paths: https://example.com/a/b?c=d&e=f#g C:\\Users\\me\\file.txt ~/src/nanochat/**/*.ts user@example.org',
  'Repeated: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa !!!!!!!!!!!!!!!! ------------------------------ ============ ____ .... ,,,, ;;;',
  'Mixed case: camelCaseIdentifier snake_case_identifier SCREAMING_CASE kebab-case-thing PascalCase HTTPServerError iPhone eBay',
  'Markdown: # Title\n\n- item **bold** _italic_ `code`\n1. first\n> quote\n\n```ts\nconst x = 1;\n```\n| a | b |\n|---|---|\n',
];

/**
 * About `bytes` of text cycling through the pieces, each block numbered, so that no two blocks are
 * the same text (caches keyed by text must not flatter a benchmark).
 */
export function corpusOfSize(bytes: number): string {
  const parts: string[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const block = `Block ${i}: ${CORPUS_PIECES[i % CORPUS_PIECES.length]}\n`;
    parts.push(block);
    size += Buffer.byteLength(block);
  }
  return parts.join('');
}
