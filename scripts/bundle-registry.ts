// Writes functions/shared/bundled-registry.ts from registry/targets.yaml, so the Lambda bundles carry the
// reviewed registry. `--check` fails when the generated file is stale.
import { readFileSync, writeFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { parseRegistryText } from '../functions/shared/registry-file.ts';

const SOURCE = 'registry/targets.yaml';
const TARGET = 'functions/shared/bundled-registry.ts';

export function bundledRegistrySource(): string {
  const text = readFileSync(SOURCE, 'utf8');
  parseRegistryText(text, SOURCE); // refuse to bundle an invalid registry
  // The parsed document, not the YAML text: the Lambda bundles then need no YAML parser. The functions
  // still validate it with the same schema when they load it.
  const document = parseYaml(text);
  return `// Generated from ${SOURCE} by \`npm run registry:derive\`. Do not edit.\nexport const BUNDLED_REGISTRY: unknown = ${JSON.stringify(document, null, 2)};\n`;
}

if (import.meta.main) {
  const wanted = bundledRegistrySource();
  let current = '';
  try {
    current = readFileSync(TARGET, 'utf8');
  } catch {}
  if (process.argv.includes('--check')) {
    if (current !== wanted) {
      console.error(`${TARGET} is stale: run npm run registry:derive`);
      process.exit(1);
    }
  } else if (current !== wanted) {
    writeFileSync(TARGET, wanted);
    console.log(`wrote ${TARGET}`);
  }
}
