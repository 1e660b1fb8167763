import * as vscode from 'vscode';

type Count = (text: string) => Promise<number>;

export interface CollectedReferences {
  /** The referenced code, fenced and labelled, ready to append to the prompt. */
  text: string;
  parts: Array<{ label: string; text: string }>;
  used: vscode.Location[];
}

/**
 * The user's references (#file, #selection, other variables) or, without any, the active editor's
 * selection, cut so that together they stay within `budgetTokens`.
 */
export async function collectReferences(request: vscode.ChatRequest, count: Count, budgetTokens: number): Promise<CollectedReferences> {
  const parts: Array<{ label: string; text: string; language: string; location?: vscode.Location }> = [];
  for (const ref of request.references) {
    const value = ref.value;
    try {
      if (value instanceof vscode.Uri) {
        const doc = await vscode.workspace.openTextDocument(value);
        parts.push({ label: vscode.workspace.asRelativePath(value), text: doc.getText(), language: doc.languageId, location: new vscode.Location(value, new vscode.Position(0, 0)) });
      } else if (value instanceof vscode.Location) {
        const doc = await vscode.workspace.openTextDocument(value.uri);
        parts.push({ label: `${vscode.workspace.asRelativePath(value.uri)}:${value.range.start.line + 1}-${value.range.end.line + 1}`, text: doc.getText(value.range), language: doc.languageId, location: value });
      } else if (typeof value === 'string' && value.trim()) {
        parts.push({ label: ref.modelDescription || ref.id, text: value, language: '' });
      }
    } catch {
      // An unreadable reference is skipped; the request still goes through.
    }
  }
  const editor = vscode.window.activeTextEditor;
  if (parts.length === 0 && editor && !editor.selection.isEmpty) {
    const doc = editor.document;
    parts.push({ label: `selection in ${vscode.workspace.asRelativePath(doc.uri)}`, text: doc.getText(editor.selection), language: doc.languageId, location: new vscode.Location(doc.uri, editor.selection) });
  }
  let remaining = budgetTokens;
  const kept: typeof parts = [];
  for (const part of parts) {
    if (remaining <= 0) break;
    let text = part.text;
    let tokens = await count(text);
    if (tokens > remaining) {
      text = text.slice(0, Math.floor(text.length * (remaining / tokens)));
      text += '\n… (cut to fit the context window)';
      tokens = remaining;
    }
    remaining -= tokens;
    kept.push({ ...part, text });
  }
  return {
    text: kept.map((p) => `${p.label}:\n\`\`\`${p.language}\n${p.text}\n\`\`\``).join('\n\n'),
    parts: kept.map(({ label, text }) => ({ label, text })),
    used: kept.flatMap((p) => (p.location ? [p.location] : [])),
  };
}
