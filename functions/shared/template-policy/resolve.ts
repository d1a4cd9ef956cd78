/**
 * Intrinsic functions resolved the way CloudFormation will, for the values the policy check reads (principals,
 * actions, resources, policy ARNs, boundaries). A value resolves to its alternatives: `Fn::If` gives both
 * branches, since the condition may flip with a parameter. What cannot be known before deployment stays
 * unknown, and the rules treat unknown as refused wherever it could widen access.
 */

export type Value =
  /** A string CloudFormation will pass on. */
  | { known: string }
  /** A resource of this template (Ref, or an attribute other than a role's Arn): one thing, never `*`. */
  | { resource: string }
  /** Anything else: the reason it cannot be known here. */
  | { unknown: string };

export interface ResolveContext {
  resources: Record<string, { Type?: unknown; Properties?: unknown }>;
  parameters: Record<string, { Type?: unknown; Default?: unknown }>;
  mappings: Record<string, unknown>;
  /** Registry parameter overrides: they win over the template's defaults, as `sam deploy` passes them. */
  overrides: Readonly<Record<string, string>>;
  accountId: string;
  region: string;
  partition: string;
  stackName: string;
  /**
   * For showing a value (the IAM inventory), not judging it: a resource of this template inside a string is
   * written `<LogicalId>` and the string stays known. The rules never set it: to them such a string is unknown.
   */
  showResources?: boolean;
}

/**
 * A CloudFormation dynamic reference (`{{resolve:ssm:...}}`, `{{resolve:secretsmanager:...}}`) anywhere in a
 * string is replaced at deployment by whatever the store holds then: the text says nothing about the value.
 */
const DYNAMIC_REFERENCE = '{{resolve:';

/** A parameter of one of these types holds a parameter-store name; CloudFormation passes on the stored value. */
const SSM_PARAMETER_TYPE = 'AWS::SSM::Parameter::Value<';

/** A string as CloudFormation will pass it on: unknown when it holds a dynamic reference. */
function text(value: string): Value {
  return value.includes(DYNAMIC_REFERENCE)
    ? { unknown: `the dynamic reference ${JSON.stringify(value)} is only resolved at deployment` }
    : { known: value };
}

/** More alternatives than this (nested Fn::If in a Fn::Sub) is refused rather than enumerated. */
const MAX_ALTERNATIVES = 256;

export const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

export function partitionOf(region: string): string {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  return 'aws';
}

/** The one key of an intrinsic function object (`{ 'Fn::Sub': ... }`, `{ Ref: ... }`), if it is one. */
export function intrinsicOf(node: unknown): [string, unknown] | undefined {
  if (!isRecord(node)) return undefined;
  const keys = Object.keys(node);
  if (keys.length !== 1) return undefined;
  const key = keys[0] as string;
  return key === 'Ref' || key === 'Condition' || key.startsWith('Fn::') ? [key, node[key]] : undefined;
}

function pseudo(name: string, ctx: ResolveContext): Value[] | undefined {
  switch (name) {
    case 'AWS::AccountId':
      return [{ known: ctx.accountId }];
    case 'AWS::Region':
      return [{ known: ctx.region }];
    case 'AWS::Partition':
      return [{ known: ctx.partition }];
    case 'AWS::StackName':
      return [{ known: ctx.stackName }];
    case 'AWS::URLSuffix':
      return [{ known: ctx.partition === 'aws-cn' ? 'amazonaws.com.cn' : 'amazonaws.com' }];
    case 'AWS::NoValue':
      return [];
    default:
      return name.startsWith('AWS::') ? [{ unknown: `${name} is only known at deployment` }] : undefined;
  }
}

function ref(name: unknown, ctx: ResolveContext): Value[] {
  if (typeof name !== 'string') return [{ unknown: 'a Ref to something that is not a name' }];
  const fromPseudo = pseudo(name, ctx);
  if (fromPseudo) return fromPseudo;
  const parameter = ctx.parameters[name];
  // Its Default or override is the name of a stored parameter, not the value CloudFormation passes on.
  if (typeof parameter?.Type === 'string' && parameter.Type.startsWith(SSM_PARAMETER_TYPE)) {
    return [{ unknown: `parameter ${name} is of type ${parameter.Type}, read at deployment` }];
  }
  if (Object.hasOwn(ctx.overrides, name)) return [text(ctx.overrides[name] as string)];
  if (parameter) {
    const fallback = parameter.Default;
    return typeof fallback === 'string' || typeof fallback === 'number'
      ? [text(String(fallback))]
      : [{ unknown: `parameter ${name} has no value` }];
  }
  if (Object.hasOwn(ctx.resources, name)) return [{ resource: name }];
  return [{ unknown: `Ref ${name} names nothing in the template` }];
}

/** The ARN of a role this template creates, as far as it can be known (its name may be generated). */
export function roleArnOf(logicalId: string, ctx: ResolveContext): Value[] {
  const properties = ctx.resources[logicalId]?.Properties;
  const props = isRecord(properties) ? properties : {};
  const names =
    props.RoleName === undefined ? [{ known: generatedName(logicalId, ctx) }] : resolve(props.RoleName, ctx);
  const paths = props.Path === undefined ? [{ known: '/' }] : resolve(props.Path, ctx);
  return combine(
    [paths, names],
    ([path, name]) => `arn:${ctx.partition}:iam::${ctx.accountId}:role${path}${name}`,
    ctx,
  );
}

/** CloudFormation names a role `<stack>-<logical id>-<random>`; the random part never matters to the rules. */
export function generatedName(logicalId: string, ctx: ResolveContext): string {
  return `${ctx.stackName}-${logicalId}-GENERATED`;
}

function getAtt(args: unknown, ctx: ResolveContext): Value[] {
  const [target, attribute] = Array.isArray(args) ? args : [];
  if (typeof target !== 'string' || !Object.hasOwn(ctx.resources, target)) {
    return [{ unknown: 'Fn::GetAtt of something that is not a resource of this template' }];
  }
  if (attribute === 'Arn' && ctx.resources[target]?.Type === 'AWS::IAM::Role') return roleArnOf(target, ctx);
  return [{ resource: target }];
}

/** Every combination of the parts' alternatives, joined; unknown or resource parts make the result unknown. */
function combine(parts: Value[][], join: (strings: string[]) => string, ctx?: ResolveContext): Value[] {
  let results: (string[] | Value)[] = [[]];
  for (const alternatives of parts) {
    const next: (string[] | Value)[] = [];
    for (const partial of results) {
      if (!Array.isArray(partial)) {
        next.push(partial);
        continue;
      }
      for (const value of alternatives) {
        if ('known' in value) next.push([...partial, value.known]);
        else if ('resource' in value && ctx?.showResources) next.push([...partial, `<${value.resource}>`]);
        else if ('resource' in value) next.push({ unknown: `it is built from resource ${value.resource}` });
        else next.push(value);
      }
    }
    if (next.length > MAX_ALTERNATIVES) return [{ unknown: 'too many Fn::If alternatives to check' }];
    results = next;
  }
  // A dynamic reference may be put together from parts (`{{resolve:` in one, the rest in a parameter).
  return results.map((result) => (Array.isArray(result) ? text(join(result)) : result));
}

/** Splits a Fn::Sub string into literal text and `${...}` variable names (`${!x}` is the literal `${x}`). */
export function subParts(text: string): ({ text: string } | { variable: string })[] {
  const parts: ({ text: string } | { variable: string })[] = [];
  let literal = '';
  let at = 0;
  while (at < text.length) {
    const open = text.indexOf('${', at);
    if (open < 0) break;
    const close = text.indexOf('}', open + 2);
    if (close < 0) break;
    literal += text.slice(at, open);
    const inside = text.slice(open + 2, close);
    if (inside.startsWith('!')) {
      literal += `\${${inside.slice(1)}}`;
    } else {
      parts.push({ text: literal }, { variable: inside.trim() });
      literal = '';
    }
    at = close + 1;
  }
  parts.push({ text: literal + text.slice(at) });
  return parts;
}

function sub(args: unknown, ctx: ResolveContext): Value[] {
  const [template, variables] = Array.isArray(args) ? args : [args, {}];
  if (typeof template !== 'string' || !isRecord(variables)) return [{ unknown: 'a Fn::Sub of a non-string' }];
  const parts = subParts(template).map((part): Value[] => {
    if ('text' in part) return [{ known: part.text }];
    const name = part.variable;
    if (Object.hasOwn(variables, name)) return resolve(variables[name], ctx);
    const dot = name.indexOf('.');
    if (dot > 0 && !name.startsWith('AWS::')) return getAtt([name.slice(0, dot), name.slice(dot + 1)], ctx);
    return ref(name, ctx);
  });
  return combine(parts, (strings) => strings.join(''), ctx);
}

function join(args: unknown, ctx: ResolveContext): Value[] {
  const [delimiter, list] = Array.isArray(args) ? args : [];
  if (typeof delimiter !== 'string' || !Array.isArray(list)) {
    return [{ unknown: 'a Fn::Join whose list is not written out' }];
  }
  return combine(
    list.map((item) => resolve(item, ctx)),
    (strings) => strings.join(delimiter),
    ctx,
  );
}

function findInMap(args: unknown, ctx: ResolveContext): Value[] {
  if (!Array.isArray(args) || args.length !== 3) return [{ unknown: 'a malformed Fn::FindInMap' }];
  return combine(
    args.map((arg) => resolve(arg, ctx)),
    (keys) => JSON.stringify(keys),
  ).flatMap((value): Value[] => {
    if (!('known' in value)) return [value];
    const [map, top, second] = JSON.parse(value.known) as string[];
    const level = ctx.mappings[map as string];
    const inner = isRecord(level) ? level[top as string] : undefined;
    const found = isRecord(inner) ? inner[second as string] : undefined;
    return found === undefined
      ? [{ unknown: `Fn::FindInMap ${map}.${top}.${second} has no value` }]
      : resolve(found, ctx);
  });
}

function select(args: unknown, ctx: ResolveContext): Value[] {
  const [index, list] = Array.isArray(args) ? args : [];
  if (!Array.isArray(list)) return [{ unknown: 'a Fn::Select whose list is not written out' }];
  // An index is a number in YAML and JSON alike: no 1.1/1.2 difference to guard against here.
  const indexes = typeof index === 'number' ? [{ known: String(index) }] : resolve(index, ctx);
  return indexes.flatMap((value): Value[] => {
    const n = 'known' in value ? Number(value.known) : Number.NaN;
    // An index we cannot read could pick any item: all of them are alternatives.
    const picked = Number.isInteger(n) && n >= 0 && n < list.length ? [list[n]] : list;
    return picked.flatMap((item) => resolve(item, ctx));
  });
}

/** The alternatives one scalar-position node can take. */
export function resolve(node: unknown, ctx: ResolveContext): Value[] {
  if (typeof node === 'string') return [text(node)];
  if (typeof node === 'number' || typeof node === 'boolean') {
    // YAML 1.1 (SAM CLI) and 1.2 read some unquoted numbers differently (`012345678901`): not a string here.
    return [{ unknown: `the unquoted scalar ${String(node)}` }];
  }
  const intrinsic = intrinsicOf(node);
  if (!intrinsic) return [{ unknown: 'a list or mapping where a single value belongs' }];
  const [name, args] = intrinsic;
  switch (name) {
    case 'Ref':
      return ref(args, ctx);
    case 'Fn::GetAtt':
      return getAtt(typeof args === 'string' ? args.split('.', 2) : args, ctx);
    case 'Fn::Sub':
      return sub(args, ctx);
    case 'Fn::Join':
      return join(args, ctx);
    case 'Fn::If': {
      const [, whenTrue, whenFalse] = Array.isArray(args) ? args : [];
      return [...resolve(whenTrue, ctx), ...resolve(whenFalse, ctx)];
    }
    case 'Fn::FindInMap':
      return findInMap(args, ctx);
    case 'Fn::Select':
      return select(args, ctx);
    default:
      return [{ unknown: `${name} cannot be resolved before deployment` }];
  }
}

/**
 * The alternatives of a list-position node (a policy's Action, a role's ManagedPolicyArns): each item's
 * alternatives, `Fn::If` branches that are whole lists included. A single scalar counts as a one-item list.
 */
export function resolveList(node: unknown, ctx: ResolveContext): Value[] {
  if (node === undefined) return [];
  if (Array.isArray(node)) return node.flatMap((item) => resolveList(item, ctx));
  const intrinsic = intrinsicOf(node);
  if (intrinsic?.[0] === 'Fn::If') {
    const [, whenTrue, whenFalse] = Array.isArray(intrinsic[1]) ? intrinsic[1] : [];
    return [...resolveList(whenTrue, ctx), ...resolveList(whenFalse, ctx)];
  }
  if (intrinsic?.[0] === 'Ref' && intrinsic[1] === 'AWS::NoValue') return [];
  if (intrinsic?.[0] === 'Fn::Split' || intrinsic?.[0] === 'Fn::GetAZs' || intrinsic?.[0] === 'Fn::Cidr') {
    return [{ unknown: `${intrinsic[0]} cannot be resolved before deployment` }];
  }
  if (intrinsic?.[0] === 'Ref' && typeof intrinsic[1] === 'string') {
    // A CommaDelimitedList parameter is a list of its comma-separated parts.
    const values = resolve(node, ctx);
    return values.flatMap((value): Value[] =>
      'known' in value ? value.known.split(',').map((part) => ({ known: part.trim() })) : [value],
    );
  }
  return resolve(node, ctx);
}

/**
 * The alternatives of a mapping-position node (a policy document, a statement), or of each item of a list of
 * them: `Fn::If` branches are both taken, `AWS::NoValue` is nothing, anything else that is not a mapping is
 * unknown.
 */
export function resolveObjects(node: unknown): ({ object: Record<string, unknown> } | { unknown: string })[] {
  if (Array.isArray(node)) return node.flatMap((item) => resolveObjects(item));
  const intrinsic = intrinsicOf(node);
  if (intrinsic?.[0] === 'Fn::If') {
    const [, whenTrue, whenFalse] = Array.isArray(intrinsic[1]) ? intrinsic[1] : [];
    return [...resolveObjects(whenTrue), ...resolveObjects(whenFalse)];
  }
  if (intrinsic?.[0] === 'Ref' && intrinsic[1] === 'AWS::NoValue') return [];
  if (intrinsic) return [{ unknown: `${intrinsic[0]} where a policy document or statement belongs` }];
  if (isRecord(node)) return [{ object: node }];
  return [{ unknown: 'a scalar where a policy document or statement belongs' }];
}

/** A value for a message: its text, or what stands for it and why it is not known. */
export function describe(value: Value, fallback: string): string {
  if ('known' in value) return value.known;
  if ('unknown' in value) return `${fallback} (${value.unknown})`;
  return fallback;
}

/** Whether a statement may be an Allow (a Deny only takes access away; an unresolved Effect may be either). */
export function mayAllow(statement: Record<string, unknown>, ctx: ResolveContext): boolean {
  const effects = resolve(statement.Effect, ctx);
  return effects.length === 0 || effects.some((effect) => !('known' in effect) || effect.known !== 'Deny');
}
