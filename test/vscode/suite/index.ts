// Runs inside the VS Code extension host: VS Code calls run() and waits for it.
import Mocha from 'mocha';
import { defineExtensionTests } from './extension.test';

export function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'bdd', color: false, timeout: 120_000, reporter: 'spec' });
  mocha.suite.emit('pre-require', globalThis, 'suite', mocha);
  defineExtensionTests();
  return new Promise((resolve, reject) => {
    const runner = mocha.run((failures) => {
      console.log(`${runner.stats?.passes ?? 0} passed, ${failures} failed`);
      failures > 0 ? reject(new Error(`${failures} tests failed.`)) : resolve();
    });
  });
}
