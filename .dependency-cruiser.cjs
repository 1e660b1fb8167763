/**
 * Architecture rules, checked by `npm test` (dependency-cruiser). The shape is in README's
 * "How it is built": src/core is plain Node, adapters live in src/vscode, dev-only code in tools/.
 * @type {import('dependency-cruiser').IConfiguration}
 */
module.exports = {
  forbidden: [
    {
      name: 'core-is-plain-node',
      comment: 'src/core must run outside VS Code (CLIs, workers, tests): the vscode module belongs to src/vscode.',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { path: '^vscode$|^node_modules/@types/vscode/' },
    },
    {
      name: 'src-is-shipped-code',
      comment: 'src/ never imports the tests or the dev tools: they are not in the VSIX.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(test|tools)/' },
    },
    {
      name: 'protocol-and-webview-are-browser-safe',
      comment: 'The webview bundle runs in a browser: it and the protocol it shares with the host use no Node built-ins.',
      severity: 'error',
      from: { path: '^(webview|src/protocol)/' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'core-does-not-reach-adapters',
      comment: 'Adapters depend on the core, never the other way round.',
      severity: 'error',
      from: { path: '^src/(core|protocol)/' },
      to: { path: '^src/(vscode/|extension\\.ts)' },
    },
    {
      name: 'no-cycles',
      comment: 'Import cycles make load order and ownership unclear.',
      severity: 'error',
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|out)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
