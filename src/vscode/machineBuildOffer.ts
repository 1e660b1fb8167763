import * as vscode from 'vscode';
import type { Logger } from '../core/log';
import { COMMANDS } from './services';

const DECLINED = 'nanochat.machineBuild.rebuildDeclined';
let offered = false;

/**
 * After an update, the llama.cpp build made for this machine no longer matches nanochat's patches or
 * node-llama-cpp, and the prebuilt binaries run instead (generation on several threads is slower).
 * Says so once per session, with the rebuild a click away, unless the user asked not to be asked again.
 */
export function offerMachineRebuild(state: vscode.Memento, log: Logger): void {
  if (offered || state.get<boolean>(DECLINED)) return;
  offered = true;
  void vscode.window.showInformationMessage(
    'nanochat was updated: its llama.cpp build for this machine is from an earlier version, so the prebuilt binaries run until it is built again (generation on several threads is slower). Build it now? It takes several minutes.',
    'Build', 'Don\'t Ask Again',
  ).then(async (choice) => {
    if (choice === 'Build') await vscode.commands.executeCommand(COMMANDS.buildLlamaCpp, { confirmed: true });
    else if (choice === 'Don\'t Ask Again') {
      await state.update(DECLINED, true);
      log.info('The rebuild of llama.cpp for this machine will not be offered again; "Nanochat: Build llama.cpp for This Machine" builds it.');
    }
  });
}
