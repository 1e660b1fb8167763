// Runs inside the VS Code extension host: VS Code calls run() and waits for it. One file per surface;
// NANOCHAT_TEST_SUITE=restricted runs the Restricted Mode suite instead (an untrusted workspace), and
// NANOCHAT_TEST_SUITE=warm a second start of the main suites' profile.
import Mocha from 'mocha';
import { defineAgentTests } from './agent.test';
import { defineBenchTests } from './bench.test';
import { defineCompletionTests } from './completions.test';
import { activateNanochat, nanochatLogTail } from './helpers';
import { defineLanguageModelTests, defineWarmStartTests } from './lmProvider.test';
import { defineModelTests } from './models.test';
import { definePanelTests } from './panel.test';
import { defineParticipantTests } from './participant.test';
import { defineRestrictedModeTests } from './restricted.test';
import { defineServerTests } from './server.test';

export function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'bdd', color: false, timeout: 120_000, reporter: 'spec', ...(process.env.NANOCHAT_TEST_GREP ? { grep: process.env.NANOCHAT_TEST_GREP } : {}) });
  mocha.suite.emit('pre-require', globalThis, 'suite', mocha);
  describe('nanochat in the real VS Code extension host', () => {
    before(activateNanochat);
    // A failure in CI leaves only this output: show what the extension logged just before it.
    afterEach(function () {
      if (this.currentTest?.state === 'failed') console.log(`--- the Nanochat log's last lines ---\n${nanochatLogTail(60)}\n---`);
    });
    if (process.env.NANOCHAT_TEST_SUITE === 'restricted') {
      defineRestrictedModeTests();
    } else if (process.env.NANOCHAT_TEST_SUITE === 'warm') {
      defineWarmStartTests();
    } else {
      // In this order: the first test checks that activation loaded nothing.
      defineLanguageModelTests();
      defineParticipantTests();
      defineBenchTests();
      defineModelTests();
      definePanelTests();
      defineCompletionTests();
      defineAgentTests();
      defineServerTests();
    }
  });
  return new Promise((resolve, reject) => {
    const runner = mocha.run((failures) => {
      console.log(`${runner.stats?.passes ?? 0} passed, ${failures} failed`);
      failures > 0 ? reject(new Error(`${failures} tests failed.`)) : resolve();
    });
  });
}
