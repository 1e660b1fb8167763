import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import { host, noHistory, recordingStream, request, statsOf, token } from './helpers';

/**
 * Runs in an untrusted workspace whose .vscode/settings.json names a model file and a models folder
 * inside the repository (run-ext-tests.mjs writes it): VS Code's Restricted Mode must ignore both,
 * and nanochat must still work from the user's own settings.
 */
export function defineRestrictedModeTests(): void {
  describe('Restricted Mode (an untrusted cloned repository)', () => {
    it('ignores the workspace\'s model file, models folder, backend and server URL, and still answers with the user\'s model', async () => {
      const api = host.api;
      assert.equal(vscode.workspace.isTrusted, false, 'the workspace is untrusted');
      const folder = vscode.workspace.workspaceFolders![0].uri.fsPath;
      const tried = JSON.parse(fs.readFileSync(path.join(folder, '.vscode', 'settings.json'), 'utf8'));
      assert.equal(tried['nanochat.model'], path.join(folder, 'evil.gguf'), 'the repository tries to choose the model');
      // The same file's harmless setting does apply: the workspace settings were read, the restricted ones ignored.
      assert.equal(api.services.settings.current.maxHistoryMessages, tried['nanochat.maxHistoryMessages']);
      assert.equal(api.services.settings.current.model, host.model, 'the user\'s model, not the repository\'s');
      assert.equal(api.services.settings.current.modelsFolder, '', 'downloads do not go into the repository');
      assert.equal(tried['nanochat.server.url'], 'http://attacker.invalid:8080/v1');
      assert.equal(api.services.settings.current.backend, 'embedded', 'prompts are not sent to the repository\'s server');
      assert.equal(api.services.settings.current['server.url'], '', 'nor is the API key');
      const rec = recordingStream();
      const result = await api.participant.handler(request('Once upon a time'), noHistory, rec.stream, token());
      assert.ok(statsOf(result)?.completionTokens > 0, rec.text());
      assert.equal(api.services.models.model?.info.path, host.model);
    });
  });
}
