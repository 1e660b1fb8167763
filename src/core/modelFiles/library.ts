import fs from 'node:fs';
import { Emitter } from '../events';
import { checkModelFile, type ModelFileInfo } from './ggufCheck';

/** A key-value store with VS Code's Memento shape (globalState), so the core stays vscode-free. */
export interface KeyValueStore {
  get<T>(key: string): T | undefined;
  update(key: string, value: unknown): Thenable<void> | Promise<void>;
}

export interface InstalledModel {
  path: string;
  name: string;
  sizeBytes: number;
  architecture: string;
  trainContextSize?: number;
  hasChatTemplate: boolean;
  addedAt: number;
  lastUsed?: number;
}

const KEY = 'nanochat.models';

/**
 * The models nanochat knows about: files the user picked or downloaded. Only a file that passed
 * checkModelFile is ever added, and entries whose file has gone are not listed.
 */
export class ModelLibrary {
  private readonly changed = new Emitter<void>();
  readonly onDidChange = this.changed.event;

  constructor(private readonly store: KeyValueStore) {}

  list(): InstalledModel[] {
    return (this.store.get<InstalledModel[]>(KEY) ?? []).filter((m) => fs.existsSync(m.path));
  }

  find(filePath: string): InstalledModel | undefined {
    return this.list().find((m) => m.path === filePath);
  }

  /** Checks the file's header and registers it in place; throws ModelFileError for a bad file. */
  async add(filePath: string, checked?: ModelFileInfo): Promise<InstalledModel> {
    const info = checked ?? await checkModelFile(filePath);
    const entry: InstalledModel = {
      path: info.path, name: info.name, sizeBytes: info.sizeBytes, architecture: info.architecture,
      trainContextSize: info.trainContextSize, hasChatTemplate: info.hasChatTemplate,
      addedAt: this.find(filePath)?.addedAt ?? Date.now(), lastUsed: this.find(filePath)?.lastUsed,
    };
    await this.save([...this.all().filter((m) => m.path !== filePath), entry]);
    return entry;
  }

  async remove(filePath: string): Promise<void> {
    await this.save(this.all().filter((m) => m.path !== filePath));
  }

  async touch(filePath: string): Promise<void> {
    const all = this.all();
    const entry = all.find((m) => m.path === filePath);
    if (!entry) return;
    entry.lastUsed = Date.now();
    await this.save(all);
  }

  private all(): InstalledModel[] { return [...(this.store.get<InstalledModel[]>(KEY) ?? [])]; }

  private async save(models: InstalledModel[]): Promise<void> {
    await this.store.update(KEY, models);
    this.changed.fire();
  }

  dispose(): void { this.changed.dispose(); }
}
