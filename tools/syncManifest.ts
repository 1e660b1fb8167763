// npm run sync-manifest: writes package.json's contributes.configuration and its workspace-trust
// capability from the settings schema in src/core/settings.ts, the one source of every setting's
// default, range and description. A unit test fails when the two are out of step.
import fs from 'node:fs';
import path from 'node:path';
import { MACHINE_SCOPED_SETTINGS, RESTRICTED_SETTINGS, SETTINGS_SECTION, defaultSettings, settingsShape, type SettingKey } from '../src/core/settings';
import { REPO_ROOT } from '../test/support/models';

export function manifestConfiguration(): { properties: Record<string, Record<string, unknown>>; restricted: string[] } {
  const defaults = defaultSettings();
  const properties: Record<string, Record<string, unknown>> = {};
  (Object.keys(settingsShape) as SettingKey[]).forEach((key, order) => {
    const json = settingsShape[key].toJSONSchema() as Record<string, unknown>;
    const prop: Record<string, unknown> = { type: json.type, default: defaults[key] };
    for (const field of ['enum', 'minimum', 'maximum', 'maxLength'] as const) if (json[field] !== undefined) prop[field] = json[field];
    if (MACHINE_SCOPED_SETTINGS.includes(key)) prop.scope = 'machine';
    prop.markdownDescription = json.description;
    prop.order = order;
    properties[`${SETTINGS_SECTION}.${key}`] = prop;
  });
  return { properties, restricted: RESTRICTED_SETTINGS.map((k) => `${SETTINGS_SECTION}.${k}`) };
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(__filename)) {
  const file = path.join(REPO_ROOT, 'package.json');
  const manifest = JSON.parse(fs.readFileSync(file, 'utf8'));
  const { properties, restricted } = manifestConfiguration();
  manifest.contributes.configuration.properties = properties;
  manifest.capabilities = {
    untrustedWorkspaces: {
      supported: 'limited',
      description: 'In Restricted Mode nanochat uses only your user settings for the model file and the models folder, never a workspace\'s.',
      restrictedConfigurations: restricted,
    },
  };
  fs.writeFileSync(file, `${JSON.stringify(manifest, null, 2)}\n`);
  console.log(`package.json: ${Object.keys(properties).length} settings, ${restricted.length} restricted in untrusted workspaces.`);
}
