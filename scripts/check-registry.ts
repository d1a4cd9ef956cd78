/**
 * `node scripts/check-registry.ts [registry file]` (run by `npm run sam:build`): refuses a registry that still
 * holds the example values registry/targets.yaml ships with. `registry:derive` bakes the registry into
 * template.yaml and the functions; deployed with a made-up account id, the orchestrator would assume roles
 * in, and upload builds to, an account that may belong to anyone. Exits 1 naming each value and where it is.
 */
import { relative, resolve } from 'node:path';
import { loadRegistryFile } from '#shared/registry/file.ts';
import type { Registry } from '#shared/registry/registry.ts';

/** Account ids used as examples here and in AWS's own documentation: never a real target. */
const EXAMPLE_ACCOUNTS = [
  '000000000000',
  '111111111111',
  '222222222222',
  '333333333333',
  '999999999999',
  '123456789012',
  '111122223333',
  '444455556666',
  '777788889999',
];

const PATTERNS: { pattern: RegExp; what: string }[] = [
  { pattern: new RegExp(`(?<!\\d)(${EXAMPLE_ACCOUNTS.join('|')})(?!\\d)`), what: 'an example account id' },
  { pattern: /00000000-0000-0000-0000-000000000000/, what: 'an example CodeConnections connection' },
  { pattern: /\bexample-org\b|\bexample\.(com|org)\b/, what: 'an example repository' },
  { pattern: /^[TU]0[A-Z0-9]*EXAMPLE|^U0RELEASE\d$/, what: 'an example Slack id' },
];

export interface Placeholder {
  /** Dotted path in the registry, e.g. applications.hello-world.environments.prod.accountId. */
  path: string;
  value: string;
  what: string;
}

export function placeholdersIn(registry: Registry): Placeholder[] {
  const found: Placeholder[] = [];
  const walk = (value: unknown, path: string[]) => {
    if (typeof value === 'string') {
      const hit = PATTERNS.find(({ pattern }) => pattern.test(value));
      if (hit) found.push({ path: path.join('.'), value, what: hit.what });
    } else if (Array.isArray(value)) {
      for (const [i, item] of value.entries()) walk(item, [...path, String(i)]);
    } else if (typeof value === 'object' && value !== null) {
      for (const [key, item] of Object.entries(value)) walk(item, [...path, key]);
    }
  };
  walk(registry, []);
  return found;
}

function main(argv: string[]): number {
  const file = resolve(argv[0] ?? 'registry/targets.yaml');
  const shown = relative(process.cwd(), file) || file;
  const found = placeholdersIn(loadRegistryFile(file));
  if (found.length === 0) {
    console.log(`ok   ${shown} holds no example values`);
    return 0;
  }
  console.error(
    `${shown} still holds example values; replace them before building the orchestrator (docs/aws.md):`,
  );
  for (const { path, value, what } of found) console.error(`  ${path}: ${JSON.stringify(value)} is ${what}`);
  console.error('then run `npm run registry:derive` so template.yaml grants exactly the new roles.');
  return 1;
}

if (import.meta.main) process.exitCode = main(process.argv.slice(2));
