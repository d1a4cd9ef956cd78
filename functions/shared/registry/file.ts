import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { RegistryError } from '../errors.ts';
import { parseRegistry, type Registry } from './registry.ts';

/**
 * Reading the registry from YAML. Kept apart from registry.ts so the Lambda bundles, which load the
 * pre-parsed document (bundled.ts), carry no YAML parser.
 */

export function loadRegistryFile(path: string): Registry {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new RegistryError(`cannot read the registry at ${path}`, { cause });
  }
  return parseRegistryText(text, path);
}

export function parseRegistryText(text: string, origin = 'registry'): Registry {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (cause) {
    throw new RegistryError(`${origin} is not valid YAML: ${(cause as Error).message}`, { cause });
  }
  return parseRegistry(raw, origin);
}
