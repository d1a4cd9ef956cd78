import { GetRoleCommand, type IAMClient, SimulatePrincipalPolicyCommand } from '@aws-sdk/client-iam';
import type { Decision } from '../diagnosis/diagnose.ts';
import { logger } from '../logger.ts';
import type { RolePaths } from '../registry/requester.ts';

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

/**
 * The role paths behind assumed-role callers (a session ARN carries none), by iam:GetRole in the orchestrator's
 * own account: an HTTP API's IAM authorization admits only principals of its account, and roles of other
 * accounts cannot be read from here. Anything not known for certain is undefined, so path rules do not match.
 */
export class IamRolePaths implements RolePaths {
  private readonly client: IAMClient;
  private readonly account: string;

  constructor(options: { client: IAMClient; account: string }) {
    this.client = options.client;
    this.account = options.account;
  }

  async rolePath(account: string, roleName: string): Promise<string | undefined> {
    if (account !== this.account) return undefined;
    try {
      const output = await this.client.send(new GetRoleCommand({ RoleName: roleName }));
      // The role must be the one the session names: same account, same name (role names are unique per account).
      const arn = output.Role?.Arn;
      const path = output.Role?.Path;
      if (!arn || !path || output.Role?.RoleName !== roleName) return undefined;
      return arn.endsWith(`:${this.account}:role${path}${roleName}`) ? path : undefined;
    } catch (error) {
      // Denied, throttled or gone: the path stays unknown and only rules that hold for any path match.
      logger.warn('role path not resolved; path-dependent rules will not match this caller', {
        roleName,
        error: (error as { name?: string }).name ?? 'Error',
      });
      return undefined;
    }
  }
}
