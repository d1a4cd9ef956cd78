/**
 * `npm run check:template`: the checks on template.yaml and the workflow definition that need no AWS:
 *
 * 1. the generated blocks are up to date (registry-derive --check);
 * 2. statemachine/deploy.asl.json, with every `${...}` substituted by a plausible value, is valid ASL
 *    and uses exactly the DefinitionSubstitutions the template declares;
 * 3. `cfn-lint template.yaml target-account/template.yaml`, when cfn-lint is installed (CI always runs it).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import {
  type CfnResource,
  type CfnTemplate,
  defaultParameterValues,
  getAtt,
  isRecord,
  loadTemplate,
  type ParameterValues,
  resolveStatic,
} from './cfn-yaml.ts';
import { BUNDLED_REGISTRY_FILE, derive, describeProblems, syncBundledRegistry } from './registry-derive.ts';

export const STATE_MACHINE_TYPE = 'AWS::Serverless::StateMachine';

const PLACEHOLDER = /\$\{([A-Za-z0-9_]+)\}/g;

/** The `${Name}` placeholders the definition text uses. */
export const aslPlaceholders = (text: string): Set<string> =>
  new Set([...text.matchAll(PLACEHOLDER)].map((match) => match[1] ?? ''));

export class UnresolvedPlaceholderError extends Error {
  override readonly name = 'UnresolvedPlaceholderError';
  readonly names: string[];
  constructor(names: string[]) {
    super(`no substitution for ${names.map((name) => `\${${name}}`).join(', ')}`);
    this.names = names;
  }
}

/**
 * Substitutes the placeholders as CloudFormation does and parses the result. A placeholder that is a
 * whole JSON string and stands for a number becomes that number (CloudFormation's integer
 * substitutions); anywhere else the value is spliced into the text. Unknown names throw.
 */
export function substituteAsl(text: string, values: Record<string, string | number>): unknown {
  const missing = [...aslPlaceholders(text)].filter((name) => !Object.hasOwn(values, name));
  if (missing.length > 0) throw new UnresolvedPlaceholderError(missing);
  const substituted = text.replace(/"\$\{([A-Za-z0-9_]+)\}"|\$\{([A-Za-z0-9_]+)\}/g, (_, whole, inner) => {
    const value = values[(whole ?? inner) as string];
    if (typeof value === 'number') return String(value);
    const json = JSON.stringify(value);
    return whole ? json : json.slice(1, -1);
  });
  return JSON.parse(substituted);
}

/** The template's one state machine. */
export function stateMachineResource(template: CfnTemplate): [string, CfnResource] {
  const machines = Object.entries(template.Resources).filter(([, r]) => r.Type === STATE_MACHINE_TYPE);
  if (machines.length !== 1 || !machines[0]) {
    throw new Error(
      `template.yaml must declare exactly one ${STATE_MACHINE_TYPE} (found ${machines.length})`,
    );
  }
  return machines[0];
}

export function definitionSubstitutions(template: CfnTemplate): Record<string, unknown> {
  const [id, machine] = stateMachineResource(template);
  const substitutions = machine.Properties?.DefinitionSubstitutions;
  if (!isRecord(substitutions)) throw new Error(`${id} has no DefinitionSubstitutions`);
  return substitutions;
}

export function definitionPath(root: string, template: CfnTemplate): string {
  const [id, machine] = stateMachineResource(template);
  const uri = machine.Properties?.DefinitionUri;
  if (typeof uri !== 'string') throw new Error(`${id} must name its definition file in DefinitionUri`);
  return join(root, uri);
}

const PLAUSIBLE_REGION = 'eu-west-1';
const PLAUSIBLE_ACCOUNT = '123456789012';

/**
 * Values that look like what CloudFormation will substitute: function ARNs for `!GetAtt Fn.Arn`,
 * numbers for mapping lookups and parameters (at the given parameter values, defaults otherwise).
 */
export function plausibleSubstitutions(
  template: CfnTemplate,
  parameters: ParameterValues = defaultParameterValues(template),
): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  for (const [name, value] of Object.entries(definitionSubstitutions(template))) {
    const att = getAtt(value);
    if (att) {
      const [logicalId, attribute] = att;
      const resource = template.Resources[logicalId];
      if (resource?.Type !== 'AWS::Serverless::Function' || attribute !== 'Arn') {
        throw new Error(
          `substitution ${name}: expected !GetAtt <Function>.Arn, got !GetAtt ${logicalId}.${attribute}`,
        );
      }
      out[name] = `arn:aws:lambda:${PLAUSIBLE_REGION}:${PLAUSIBLE_ACCOUNT}:function:crossdeploy-${logicalId}`;
      continue;
    }
    const resolved = resolveStatic(template, value, parameters);
    if (typeof resolved === 'number') out[name] = resolved;
    else if (typeof resolved === 'string') out[name] = /^\d+$/.test(resolved) ? Number(resolved) : resolved;
    else throw new Error(`substitution ${name}: cannot derive a plausible value`);
  }
  return out;
}

interface AslValidation {
  isValid: boolean;
  errorsText: (separator?: string) => string;
}
type AslValidator = (definition: unknown) => AslValidation;

// asl-validator is CommonJS without types.
const aslValidator = createRequire(import.meta.url)('asl-validator') as AslValidator;

/** asl-validator's errors for the definition (empty when valid). It mutates its input: a copy goes in. */
export function validateAsl(definition: unknown): string[] {
  const result = aslValidator(structuredClone(definition));
  return result.isValid ? [] : result.errorsText('\n').split('\n');
}

export interface AslCheck {
  errors: string[];
  definition?: unknown;
}

/** Placeholders both ways, then ASL validity of the substituted definition. */
export function checkAsl(root: string, template: CfnTemplate): AslCheck {
  const text = readFileSync(definitionPath(root, template), 'utf8');
  const declared = Object.keys(definitionSubstitutions(template));
  const used = aslPlaceholders(text);
  const errors = declared
    .filter((name) => !used.has(name))
    .map((name) => `DefinitionSubstitutions.${name} is never used by the definition`);
  let definition: unknown;
  try {
    definition = substituteAsl(text, plausibleSubstitutions(template));
  } catch (error) {
    return { errors: [...errors, (error as Error).message] };
  }
  return { errors: [...errors, ...validateAsl(definition)], definition };
}

export type LintResult =
  | { status: 'passed' | 'failed'; output: string }
  | { status: 'skipped'; output: string };

export function runCfnLint(root: string, file = 'template.yaml'): LintResult {
  const run = spawnSync('cfn-lint', [file], { cwd: root, encoding: 'utf8' });
  if (run.error && (run.error as NodeJS.ErrnoException).code === 'ENOENT') {
    return { status: 'skipped', output: 'cfn-lint not found: skipped (CI runs it)' };
  }
  const output = `${run.stdout ?? ''}${run.stderr ?? ''}`.trim();
  // cfn-lint's exit code is a bit mask: 2 errors, 4 warnings, 8 informational. Only errors fail.
  const failed = run.error !== undefined || run.status === null || (run.status & 2) !== 0 || run.status === 1;
  return { status: failed ? 'failed' : 'passed', output };
}

function main(): number {
  const root = resolve(import.meta.dirname, '..');
  process.chdir(root);
  let failures = 0;

  try {
    const problems = describeProblems(derive(root, { write: false }));
    if (!syncBundledRegistry(root, { write: false })) problems.push(`${BUNDLED_REGISTRY_FILE}: stale`);
    if (problems.length === 0) console.log('ok   generated blocks are up to date');
    else {
      failures += 1;
      console.error(`FAIL template.yaml generated blocks:\n  ${problems.join('\n  ')}`);
    }
  } catch (error) {
    failures += 1;
    console.error(`FAIL registry-derive: ${(error as Error).message}`);
  }

  try {
    const template = loadTemplate(join(root, 'template.yaml'));
    const { errors } = checkAsl(root, template);
    if (errors.length === 0)
      console.log('ok   statemachine definition is valid ASL and matches DefinitionSubstitutions');
    else {
      failures += 1;
      console.error(`FAIL statemachine definition:\n  ${errors.join('\n  ')}`);
    }
  } catch (error) {
    failures += 1;
    console.error(`FAIL statemachine definition: ${(error as Error).message}`);
  }

  // The orchestrator's template and the one target accounts deploy (target-account/template.yaml).
  for (const file of ['template.yaml', 'target-account/template.yaml']) {
    const lint = runCfnLint(root, file);
    if (lint.status === 'skipped') console.log(lint.output);
    else if (lint.status === 'passed')
      console.log(`ok   cfn-lint ${file}${lint.output ? `\n${lint.output}` : ''}`);
    else {
      failures += 1;
      console.error(`FAIL cfn-lint ${file}\n${lint.output}`);
    }
  }

  return failures === 0 ? 0 : 1;
}

if (import.meta.main) process.exitCode = main();
