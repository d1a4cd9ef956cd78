/**
 * Reads CloudFormation/SAM YAML, short intrinsic tags included, into the long JSON form
 * (`!Ref X` -> `{ Ref: 'X' }`, `!GetAtt A.B` -> `{ 'Fn::GetAtt': ['A', 'B'] }`, ...), so scripts and
 * tests look at the template exactly as CloudFormation will.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { cfnTags } from '../functions/shared/template-policy/cfn-yaml.ts';

// The tag set lives with the template policy check, which the doctor and the deploy job run too.
export { cfnTags };

/** Parses CloudFormation YAML into plain JSON-shaped data. Throws on any YAML error or unknown tag. */
export const parseCfnYaml = (text: string): unknown => {
  const value = parse(text, { customTags: cfnTags, uniqueKeys: true, prettyErrors: true, strict: true });
  return value;
};

export interface CfnResource {
  Type: string;
  Properties?: Record<string, unknown>;
  Metadata?: Record<string, unknown>;
  Condition?: string;
  DependsOn?: string | string[];
  DeletionPolicy?: string;
  UpdateReplacePolicy?: string;
}

export interface CfnTemplate {
  AWSTemplateFormatVersion?: string;
  Transform?: string | string[];
  Description?: string;
  Globals?: Record<string, Record<string, unknown>>;
  Parameters?: Record<string, Record<string, unknown>>;
  Mappings?: Record<string, Record<string, Record<string, unknown>>>;
  Conditions?: Record<string, unknown>;
  Resources: Record<string, CfnResource>;
  Outputs?: Record<string, Record<string, unknown>>;
}

export const parseTemplate = (text: string): CfnTemplate => {
  const value = parseCfnYaml(text);
  if (typeof value !== 'object' || value === null || !('Resources' in value)) {
    throw new Error('template has no Resources section');
  }
  return value as CfnTemplate;
};

export const loadTemplate = (path: string): CfnTemplate => parseTemplate(readFileSync(path, 'utf8'));

/** The resources of one type, as [logicalId, resource] pairs in template order. */
export const resourcesOfType = (template: CfnTemplate, type: string): [string, CfnResource][] =>
  Object.entries(template.Resources).filter(([, resource]) => resource.Type === type);

export const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** `{ Ref: 'X' }` -> 'X', anything else -> undefined. */
export const refName = (value: unknown): string | undefined =>
  isRecord(value) && typeof value.Ref === 'string' ? value.Ref : undefined;

/** `{ 'Fn::GetAtt': ['X', 'Arn'] }` -> ['X', 'Arn'], anything else -> undefined. */
export const getAtt = (value: unknown): [string, string] | undefined => {
  if (!isRecord(value)) return undefined;
  const target = value['Fn::GetAtt'];
  if (Array.isArray(target) && typeof target[0] === 'string' && typeof target[1] === 'string') {
    return [target[0], target[1]];
  }
  return undefined;
};

export type ParameterValues = Record<string, string>;

/** Every parameter at its Default (as CloudFormation passes them: strings). */
export const defaultParameterValues = (template: CfnTemplate): ParameterValues =>
  Object.fromEntries(
    Object.entries(template.Parameters ?? {}).flatMap(([name, parameter]) =>
      parameter.Default === undefined ? [] : [[name, String(parameter.Default)]],
    ),
  );

/**
 * Resolves the intrinsics that can be known before deployment (Ref to a parameter, Fn::FindInMap) for the
 * given parameter values. Anything that needs a deployed stack (GetAtt, pseudo parameters) throws.
 */
export function resolveStatic(template: CfnTemplate, value: unknown, parameters: ParameterValues): unknown {
  if (Array.isArray(value)) return value.map((item) => resolveStatic(template, item, parameters));
  if (!isRecord(value)) return value;
  const ref = refName(value);
  if (ref !== undefined) {
    if (!Object.hasOwn(parameters, ref)) throw new Error(`cannot resolve Ref ${ref} before deployment`);
    return parameters[ref];
  }
  const findInMap = value['Fn::FindInMap'];
  if (findInMap !== undefined) {
    if (!Array.isArray(findInMap) || findInMap.length !== 3)
      throw new Error('Fn::FindInMap takes three arguments');
    const [map, top, second] = findInMap.map((arg) => String(resolveStatic(template, arg, parameters)));
    const found = template.Mappings?.[map ?? '']?.[top ?? '']?.[second ?? ''];
    if (found === undefined) throw new Error(`Fn::FindInMap [${map}, ${top}, ${second}] has no value`);
    return found;
  }
  const intrinsic = Object.keys(value).find((key) => key.startsWith('Fn::'));
  if (intrinsic) throw new Error(`cannot resolve ${intrinsic} before deployment`);
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k, resolveStatic(template, v, parameters)]),
  );
}
