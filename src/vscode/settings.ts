import * as vscode from 'vscode';
import { Emitter } from '../core/events';
import type { Logger } from '../core/log';
import { parseSettings, settingsShape, SETTINGS_SECTION, type Settings } from '../core/settings';

/**
 * The validated nanochat settings. An invalid value is logged, shown once in a warning that names
 * the setting, and replaced by its default; nothing downstream ever sees it.
 */
export class SettingsSource implements vscode.Disposable {
  private value: Settings;
  private readonly changed = new Emitter<Settings>();
  readonly onDidChange = this.changed.event;
  private readonly warned = new Set<string>();
  private readonly subscription: vscode.Disposable;

  constructor(private readonly log: Logger) {
    this.value = this.read();
    this.subscription = vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration(SETTINGS_SECTION)) return;
      this.value = this.read();
      this.changed.fire(this.value);
    });
  }

  get current(): Settings { return this.value; }

  /** Writes a setting at the user level (the panel's controls and model selection use this). */
  async update<K extends keyof Settings>(key: K, value: Settings[K]): Promise<void> {
    await vscode.workspace.getConfiguration(SETTINGS_SECTION).update(key, value, vscode.ConfigurationTarget.Global);
  }

  private read(): Settings {
    const config = vscode.workspace.getConfiguration(SETTINGS_SECTION);
    const raw: Record<string, unknown> = {};
    for (const key of Object.keys(settingsShape)) raw[key] = config.get(key);
    const { settings, problems } = parseSettings(raw);
    for (const problem of problems) {
      this.log.warn(problem.message);
      if (this.warned.has(problem.message)) continue;
      this.warned.add(problem.message);
      void vscode.window.showWarningMessage(problem.message, 'Open Settings').then((choice) => {
        if (choice) void vscode.commands.executeCommand('workbench.action.openSettings', `${SETTINGS_SECTION}.${problem.key}`);
      });
    }
    return settings;
  }

  dispose(): void {
    this.subscription.dispose();
    this.changed.dispose();
  }
}
