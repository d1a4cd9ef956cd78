import { createRequire } from 'node:module';
import type { Decision } from '../diagnose.ts';

/**
 * IAM reads behind the doctor's and the diagnosis' probes: iam:SimulatePrincipalPolicy (does this principal's
 * policy allow an action on a resource?) and iam:GetRole (does the role exist, what is its full ARN?).
 *
 * @aws-sdk/client-iam (and client-s3, for the artifacts bucket check) are not dependencies yet, so the SDK is
 * loaded when first needed instead of imported: without it the checks that need it report themselves skipped,
 * and the Lambda runtime, which ships SDK v3, resolves it through NODE_PATH. Once the packages are in
 * package.json, `loadIamSdk` becomes a plain import and nothing else here changes.
 */

/** The part of @aws-sdk/client-iam used here. */
export interface IamSdk {
  IAMClient: new (config: { region?: string; credentials?: unknown }) => IamClientLike;
  GetRoleCommand: new (input: { RoleName: string }) => unknown;
  SimulatePrincipalPolicyCommand: new (input: SimulateInput) => unknown;
}

export interface IamClientLike {
  send(command: unknown): Promise<unknown>;
}

interface SimulateInput {
  PolicySourceArn: string;
  ActionNames: string[];
  ResourceArns?: string[];
  ContextEntries?: { ContextKeyName: string; ContextKeyType: 'string'; ContextKeyValues: string[] }[];
}

interface SimulateOutput {
  EvaluationResults?: { EvalActionName?: string; EvalDecision?: string }[];
}

interface GetRoleOutput {
  Role?: { Arn?: string; AssumeRolePolicyDocument?: string };
}

const requireOptional = createRequire(import.meta.url);

/** A package that may be missing: undefined when it is not installed (anything else still throws). */
export function loadOptionalModule<T>(name: string): T | undefined {
  try {
    return requireOptional(name) as T;
  } catch (error) {
    if ((error as { code?: string }).code === 'MODULE_NOT_FOUND') return undefined;
    throw error;
  }
}

export const IAM_SDK_PACKAGE = '@aws-sdk/client-iam';

export const loadIamSdk = (): IamSdk | undefined => loadOptionalModule<IamSdk>(IAM_SDK_PACKAGE);

const ROLE_NAME = /:role\/(?:.*\/)?([^/]+)$/;
const isNotFound = (error: unknown) =>
  /^NoSuchEntity(Exception)?$/.test((error as { name?: string }).name ?? '');

/** The role as IAM has it, or undefined when there is no role of that name in the caller's account. */
export interface RoleFacts {
  arn: string;
  /** The decoded trust policy document. */
  trustPolicy?: unknown;
}

export class IamReader {
  private readonly client: IamClientLike;
  private readonly sdk: IamSdk;

  constructor(options: { client: IamClientLike; sdk: IamSdk }) {
    this.client = options.client;
    this.sdk = options.sdk;
  }

  /** iam:SimulatePrincipalPolicy: the principal's identity policies (and boundary), not the resource's policy. */
  async simulate(
    principalArn: string,
    actions: string[],
    resourceArn: string,
    context: Record<string, string> = {},
  ): Promise<Record<string, Decision>> {
    const output = (await this.client.send(
      new this.sdk.SimulatePrincipalPolicyCommand({
        PolicySourceArn: principalArn,
        ActionNames: actions,
        ResourceArns: [resourceArn],
        ...(Object.keys(context).length > 0
          ? {
              ContextEntries: Object.entries(context).map(([name, value]) => ({
                ContextKeyName: name,
                ContextKeyType: 'string' as const,
                ContextKeyValues: [value],
              })),
            }
          : {}),
      }),
    )) as SimulateOutput;
    const decisions: Record<string, Decision> = {};
    for (const result of output.EvaluationResults ?? []) {
      const decision = result.EvalDecision;
      if (!result.EvalActionName) continue;
      // Anything IAM may add later counts as not allowed: the doctor must never report a false pass.
      decisions[result.EvalActionName] =
        decision === 'allowed' ? 'allowed' : decision === 'explicitDeny' ? 'explicitDeny' : 'implicitDeny';
    }
    return decisions;
  }

  /** iam:GetRole by the ARN's name, in the account of the credentials. */
  async role(roleArn: string): Promise<RoleFacts | undefined> {
    const name = ROLE_NAME.exec(roleArn)?.[1];
    if (!name) return undefined;
    try {
      const output = (await this.client.send(
        new this.sdk.GetRoleCommand({ RoleName: name }),
      )) as GetRoleOutput;
      if (!output.Role?.Arn) return undefined;
      const document = output.Role.AssumeRolePolicyDocument;
      let trustPolicy: unknown;
      if (document) {
        try {
          // IAM returns policy documents URL-encoded.
          trustPolicy = JSON.parse(decodeURIComponent(document));
        } catch {
          trustPolicy = undefined;
        }
      }
      return { arn: output.Role.Arn, ...(trustPolicy !== undefined ? { trustPolicy } : {}) };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }
}
