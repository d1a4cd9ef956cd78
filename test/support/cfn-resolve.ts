// biome-ignore-all lint/suspicious/noTemplateCurlyInString: CloudFormation !Sub placeholders, not JavaScript
import { type CfnTemplate, isRecord } from '../../scripts/cfn-yaml.ts';

/**
 * Turns a template's policy documents into the JSON IAM sees, for one installation: parameters, pseudo
 * parameters, conditions and the physical names of the template's own resources filled in. Only the intrinsic
 * functions the templates use in IAM documents are known (Ref, Fn::Sub, Fn::GetAtt, Fn::If, Fn::Join,
 * Fn::Equals, Fn::Not); anything else, or a name it cannot resolve, throws, so a test never evaluates a
 * half-resolved policy.
 */

export interface Installation {
  partition?: string;
  account: string;
  region: string;
  stackName: string;
  parameters: Record<string, string | string[]>;
  /** Physical values of resources the template does not name itself (`Ref` and `GetAtt .Arn`). */
  resources?: Record<string, { ref?: string; arn?: string }>;
}

const NO_VALUE = Symbol('AWS::NoValue');

export class CfnResolver {
  readonly #t: CfnTemplate;
  readonly #at: Installation & { partition: string };

  constructor(template: CfnTemplate, installation: Installation) {
    this.#t = template;
    this.#at = { partition: 'aws', ...installation };
  }

  get installation() {
    return this.#at;
  }

  /** The value of a parameter: the installation's, else the template's default. */
  parameter(name: string): string | string[] {
    const given = this.#at.parameters[name];
    if (given !== undefined) return given;
    const declared = this.#t.Parameters?.[name];
    if (!declared) throw new Error(`no parameter ${name}`);
    if (declared.Default === undefined) throw new Error(`parameter ${name} has no value and no default`);
    const value = declared.Default;
    return declared.Type === 'CommaDelimitedList'
      ? String(value)
          .split(',')
          .filter((v) => v !== '')
      : String(value);
  }

  condition(name: string): boolean {
    const expression = this.#t.Conditions?.[name];
    if (expression === undefined) throw new Error(`no condition ${name}`);
    return Boolean(this.resolve(expression));
  }

  ref(name: string): string | string[] | typeof NO_VALUE {
    const at = this.#at;
    switch (name) {
      case 'AWS::NoValue':
        return NO_VALUE;
      case 'AWS::Partition':
        return at.partition;
      case 'AWS::AccountId':
        return at.account;
      case 'AWS::Region':
        return at.region;
      case 'AWS::StackName':
        return at.stackName;
      case 'AWS::StackId':
        return `arn:${at.partition}:cloudformation:${at.region}:${at.account}:stack/${at.stackName}/00000000-0000-0000-0000-000000000000`;
      case 'AWS::URLSuffix':
        return 'amazonaws.com';
    }
    if (this.#t.Parameters?.[name]) return this.parameter(name);
    const given = at.resources?.[name]?.ref;
    if (given) return given;
    const resource = this.#t.Resources[name];
    if (!resource) throw new Error(`Ref ${name}: no such parameter or resource`);
    const props = resource.Properties ?? {};
    switch (resource.Type) {
      case 'AWS::IAM::Role':
        return this.#string(props.RoleName, `${name}.RoleName`);
      case 'AWS::IAM::ManagedPolicy':
        return `arn:${at.partition}:iam::${at.account}:policy${this.#path(props.Path)}${this.#string(props.ManagedPolicyName, `${name}.ManagedPolicyName`)}`;
      case 'AWS::S3::Bucket':
        return this.#string(props.BucketName, `${name}.BucketName`);
      default:
        throw new Error(`Ref ${name}: give its physical value in Installation.resources`);
    }
  }

  getAtt(name: string, attribute: string): string {
    const given = this.#at.resources?.[name]?.arn;
    if (attribute === 'Arn' && given) return given;
    const resource = this.#t.Resources[name];
    if (!resource) throw new Error(`GetAtt ${name}: no such resource`);
    const at = this.#at;
    if (attribute === 'Arn' && resource.Type === 'AWS::IAM::Role') {
      return `arn:${at.partition}:iam::${at.account}:role${this.#path(resource.Properties?.Path)}${this.ref(name) as string}`;
    }
    if (attribute === 'Arn' && resource.Type === 'AWS::S3::Bucket') {
      return `arn:${at.partition}:s3:::${this.ref(name) as string}`;
    }
    throw new Error(`GetAtt ${name}.${attribute}: give it in Installation.resources`);
  }

  #path(path: unknown): string {
    return path === undefined ? '/' : this.#string(path, 'Path');
  }

  #string(value: unknown, what: string): string {
    const resolved = this.resolve(value);
    if (typeof resolved !== 'string') throw new Error(`${what} does not resolve to a string`);
    return resolved;
  }

  #sub(text: string, variables: Record<string, unknown> = {}): string {
    return text.replace(/\$\{([^}!][^}]*)\}/g, (_, name: string) => {
      if (name in variables) return String(this.resolve(variables[name]));
      const dot = name.indexOf('.');
      if (dot > 0 && !name.startsWith('AWS::')) return this.getAtt(name.slice(0, dot), name.slice(dot + 1));
      const value = this.ref(name);
      if (typeof value !== 'string') throw new Error(`\${${name}} is not a string`);
      return value;
    });
  }

  /** The value CloudFormation would give; AWS::NoValue drops the key or list item. */
  resolve(value: unknown): unknown {
    if (Array.isArray(value)) {
      return value.map((v) => this.resolve(v)).filter((v) => v !== NO_VALUE);
    }
    if (!isRecord(value)) return value;
    const keys = Object.keys(value);
    if (keys.length === 1) {
      const [key] = keys as [string];
      const arg = value[key];
      switch (key) {
        case 'Ref':
          return this.ref(String(arg));
        case 'Fn::Sub':
          return Array.isArray(arg)
            ? this.#sub(String(arg[0]), (arg[1] ?? {}) as Record<string, unknown>)
            : this.#sub(String(arg));
        case 'Fn::GetAtt': {
          const [resource, attribute] = arg as [string, string];
          return this.getAtt(resource, attribute);
        }
        case 'Fn::If': {
          const [condition, whenTrue, whenFalse] = arg as [string, unknown, unknown];
          return this.resolve(this.condition(condition) ? whenTrue : whenFalse);
        }
        case 'Fn::Join': {
          const [separator, items] = arg as [string, unknown];
          const list = this.resolve(items);
          if (!Array.isArray(list)) throw new Error('Fn::Join of something not a list');
          return list.join(separator);
        }
        case 'Fn::Equals': {
          const [a, b] = arg as [unknown, unknown];
          return JSON.stringify(this.resolve(a)) === JSON.stringify(this.resolve(b));
        }
        case 'Fn::Not':
          return !(this.resolve((arg as unknown[])[0]) as boolean);
        case 'Condition':
          return this.condition(String(arg));
      }
      if (key.startsWith('Fn::')) throw new Error(`${key} is not known to this resolver`);
    }
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      const resolved = this.resolve(v);
      if (resolved !== NO_VALUE) out[key] = resolved;
    }
    return out;
  }
}
