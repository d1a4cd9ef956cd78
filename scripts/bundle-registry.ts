// Writes functions/shared/registry/bundled.ts from registry/targets.yaml, so the Lambda bundles carry the
// reviewed registry. `--check` fails when the generated file is stale.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseRegistryText } from '../functions/shared/registry/file.ts';

const SOURCE = 'registry/targets.yaml';
const TARGET = 'functions/shared/registry/bundled.ts';

export function bundledRegistrySource(): string {
  // Parsed here, at build time, with the schema's defaults applied: the functions then need neither a YAML
  // parser nor the schema (zod, the cron parser) at run time. The registry check in `npm test` keeps this
  // file in step with registry/targets.yaml.
  const registry = parseRegistryText(readFileSync(SOURCE, 'utf8'), SOURCE);
  return (
    `// Generated from ${SOURCE} by \`npm run registry:derive\`. Do not edit.\n` +
    "import type { Registry } from './registry.ts';\n\n" +
    `export const BUNDLED_REGISTRY: Registry = ${JSON.stringify(registry, null, 2)};\n`
  );
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
