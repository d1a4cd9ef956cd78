import { GetRoleCommand, type IAMClient, SimulatePrincipalPolicyCommand } from '@aws-sdk/client-iam';
import type { Decision } from '../diagnose.ts';

/**
 * IAM reads behind the doctor's and the diagnosis' probes: iam:SimulatePrincipalPolicy (does this principal's
 * policy allow an action on a resource?) and iam:GetRole (does the role exist, what is its full ARN?).
 */

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
  private readonly client: IAMClient;

  constructor(options: { client: IAMClient }) {
    this.client = options.client;
  }

  /** iam:SimulatePrincipalPolicy: the principal's identity policies (and boundary), not the resource's policy. */
  async simulate(
    principalArn: string,
    actions: string[],
    resourceArn: string,
    context: Record<string, string> = {},
  ): Promise<Record<string, Decision>> {
    const contextEntries = Object.entries(context).map(([name, value]) => ({
      ContextKeyName: name,
      ContextKeyType: 'string' as const,
      ContextKeyValues: [value],
    }));
    const output = await this.client.send(
      new SimulatePrincipalPolicyCommand({
        PolicySourceArn: principalArn,
        ActionNames: actions,
        ResourceArns: [resourceArn],
        ...(contextEntries.length > 0 ? { ContextEntries: contextEntries } : {}),
      }),
    );
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
      const output = await this.client.send(new GetRoleCommand({ RoleName: name }));
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
