/**
 * diagnosis/: the one diagnosis of a failed role assumption and the IAM statements that fix it, shared by
 * Assume Target Role, the doctor and the AWS adapters. May import: the cross-cutting modules. Never aws/.
 */
import type { AssumeRoleParams } from '../ports.ts';
import type { AwsFault } from './aws-fault.ts';
import {
  callerPolicyStatement,
  type PolicyFix,
  parseRoleArn,
  passRoleStatement,
  roleOfSession,
  trustPolicyStatement,
} from './statements.ts';

/**
 * The one diagnosis of a failed role assumption, shared by the workflow's Assume Target Role step (through
 * the STS adapter) and by `crossdeploy doctor`, so a failed deployment's record and the doctor say the same.
 *
 * STS answers AccessDenied with the same text whether the caller's policy lacks sts:AssumeRole, the trust
 * policy does not trust the caller, the ExternalId is wrong or missing, or the role does not exist. So the
 * diagnosis lists every candidate, says which account holds each fix, and ranks them with whatever evidence
 * the caller could gather (a policy simulation, a retry without SourceIdentity, a role lookup). Pure: the
 * evidence is gathered by `gatherAssumeRoleEvidence` (evidence.ts) through probes, the adapters' business.
 */

/** Role chaining caps a session at one hour, whatever the role's MaxSessionDuration says. */
export const ROLE_CHAINING_LIMIT_SECONDS = 3600;

export type Decision = 'allowed' | 'implicitDeny' | 'explicitDeny';

/** What a caller could find out after a denial. Everything is optional: the workflow gathers little. */
export interface AssumeRoleEvidence {
  /** GetCallerIdentity of the source credentials (needs no permission, so it almost always works). */
  caller?: { arn: string; account: string };
  /** The caller's role ARN with its path, when IAM could be read (aws:PrincipalArn compares the full ARN). */
  callerRoleArn?: string;
  /** iam:SimulatePrincipalPolicy of the caller's role, for each action on the deploy role. */
  simulation?: Partial<Record<'sts:AssumeRole' | 'sts:SetSourceIdentity', Decision>>;
  /** The same AssumeRole without SourceIdentity (the session is discarded at once). */
  withoutSourceIdentity?: 'succeeded' | 'denied';
  /** iam:GetRole of the deploy role, only possible when it is in an account the caller can read. */
  roleExists?: boolean;
  /** What could not be checked, and why: shown so a reader knows which candidates stay open. */
  unchecked?: string[];
}

export interface DiagnosisContext {
  /** The AssumeRole exactly as it was sent. */
  attempt: AssumeRoleParams;
  /** The environment's account in the registry. */
  targetAccountId: string;
  /** The principal the deploy role is meant to trust (the deployer role), when the caller knows it. */
  expectedCallerRoleArn?: string;
  /** The deploy job's role, which the deploy role must trust too (the doctor behind the API knows it). */
  deployJobRoleArn?: string;
  /** Where the environment is in the registry, for fixes that edit it (`applications.a.environments.e`). */
  registryPath?: string;
}

export type CauseCode =
  | 'wrong-account'
  | 'caller-policy'
  | 'trust-policy'
  | 'external-id'
  | 'role-missing'
  | 'source-identity'
  | 'chaining-duration'
  | 'pass-role'
  | 'region-disabled'
  | 'expired-credentials'
  | 'invalid-credentials'
  | 'no-credentials'
  | 'throttled'
  | 'unknown';

export type Likelihood = 'confirmed' | 'likely' | 'possible' | 'ruled-out';

/** Which account's configuration holds a fix (`registry`: the targets registry, reviewed in git). */
export interface FixLocation {
  kind: 'orchestrator' | 'target' | 'registry' | 'caller';
  accountId?: string;
}

export interface Candidate {
  cause: CauseCode;
  likelihood: Likelihood;
  account: FixLocation;
  /** One line: what must be true. The workflow's record carries these lines. */
  summary: string;
  /** What to do, in full. */
  fix: string;
  /** The evidence that set the likelihood, when there was some. */
  because?: string;
  statements?: PolicyFix[];
}

export interface Diagnosis {
  fault: AwsFault;
  headline: string;
  /** Best first: confirmed, likely, possible, then ruled out. */
  candidates: Candidate[];
  unchecked: string[];
}

const RANK: Record<Likelihood, number> = { confirmed: 0, likely: 1, possible: 2, 'ruled-out': 3 };

const describeDecision = (decision: Decision) =>
  decision === 'explicitDeny'
    ? 'denies it explicitly'
    : decision === 'implicitDeny'
      ? 'does not allow it'
      : 'allows it';

/**
 * Checks, before any AWS call, that a role ARN is in the environment's account: the seed article's profile
 * named the dev account in role_arn, which deploys silently into the wrong account when such a role exists.
 */
export function roleAccountMismatch(roleArn: string, accountId: string): string | undefined {
  const role = parseRoleArn(roleArn);
  if (!role) return `${roleArn} is not an IAM role ARN`;
  if (role.account === accountId) return undefined;
  return `${roleArn} is in account ${role.account}, but the environment's account is ${accountId}`;
}

/** The diagnosis of an AssumeRole (or of the GetCallerIdentity around it) that failed. */
export function diagnoseAssumeRole(
  fault: AwsFault,
  context: DiagnosisContext,
  evidence: AssumeRoleEvidence = {},
): Diagnosis {
  const { attempt } = context;
  const role = parseRoleArn(attempt.roleArn);
  const targetAccount = role?.account ?? context.targetAccountId;
  const sessionRole =
    (evidence.caller ? roleOfSession(evidence.caller.arn) : undefined) ??
    (fault.principal ? roleOfSession(fault.principal) : undefined);
  // aws:PrincipalArn compares the role ARN with its path, which a session ARN lacks: prefer a full ARN.
  const expected = context.expectedCallerRoleArn;
  const expectedMatches =
    expected !== undefined &&
    (sessionRole === undefined || parseRoleArn(expected)?.name === parseRoleArn(sessionRole)?.name);
  const callerRole = evidence.callerRoleArn ?? (expectedMatches ? expected : undefined) ?? sessionRole;
  const callerAccount =
    evidence.caller?.account ?? (callerRole ? parseRoleArn(callerRole)?.account : undefined);
  const orchestrator: FixLocation = {
    kind: 'orchestrator',
    ...(callerAccount ? { accountId: callerAccount } : {}),
  };
  const target: FixLocation = { kind: 'target', accountId: targetAccount };
  const registry: FixLocation = { kind: 'registry' };
  const where = context.registryPath ? ` (${context.registryPath})` : '';
  const callerName = callerRole ?? 'the caller';
  const unchecked = [...(evidence.unchecked ?? [])];
  const single = (headline: string, candidate: Candidate): Diagnosis => ({
    fault,
    headline,
    candidates: [candidate],
    unchecked,
  });

  switch (fault.kind) {
    case 'expired-credentials':
      return single(`the caller's own credentials are expired (${fault.code})`, {
        cause: 'expired-credentials',
        likelihood: 'confirmed',
        account: { kind: 'caller' },
        summary: "the caller's credentials must be current",
        fix:
          'Refresh the credentials the call was signed with (for example `aws sso login`, or export a new session), ' +
          'then run the doctor again. Nothing is wrong in either account.',
        because: `AWS said: ${fault.message}`,
      });
    case 'invalid-credentials':
    case 'no-credentials':
      return single(`the caller has no usable AWS credentials (${fault.code})`, {
        cause: fault.kind,
        likelihood: 'confirmed',
        account: { kind: 'caller' },
        summary: 'the caller needs valid AWS credentials',
        fix:
          'Configure credentials for the orchestrator account (a profile, SSO session or environment variables). ' +
          'If this happened after AssumeRole succeeded, the target region may be an opt-in region the target ' +
          'account has not enabled.',
        because: `AWS said: ${fault.message}`,
      });
    case 'throttled':
      return single('STS throttled the request', {
        cause: 'throttled',
        likelihood: 'confirmed',
        account: { kind: 'caller' },
        summary: 'retry later',
        fix: 'Retry in a minute; nothing is misconfigured.',
      });
    case 'region-disabled': {
      const account = fault.account ?? callerAccount;
      const inTarget = account !== undefined && account === targetAccount;
      return single(`STS is not activated in ${attempt.region} for account ${account ?? '(unknown)'}`, {
        cause: 'region-disabled',
        likelihood: 'confirmed',
        account: inTarget ? target : { kind: 'orchestrator', ...(account ? { accountId: account } : {}) },
        summary: `STS must be active in ${attempt.region} for account ${account ?? 'named in the error'}`,
        fix:
          `In account ${account ?? 'named in the error'}: IAM console → Account settings → Security Token Service ` +
          `(STS) → activate the ${attempt.region} endpoint. If ${attempt.region} is an opt-in region, enable the ` +
          'region for the account first (Account → AWS Regions).',
        because: `AWS said: ${fault.message}`,
      });
    }
    case 'chaining-duration':
      return single(
        `DurationSeconds ${attempt.durationSeconds} is above the one-hour limit of role chaining`,
        {
          cause: 'chaining-duration',
          likelihood: 'confirmed',
          account: orchestrator,
          summary: `request at most ${ROLE_CHAINING_LIMIT_SECONDS} seconds: the caller is itself a role session`,
          fix:
            `A role session (${callerName}) assuming another role is role chaining, capped at ` +
            `${ROLE_CHAINING_LIMIT_SECONDS} seconds whatever the role's MaxSessionDuration says. Ask for at most ` +
            `${ROLE_CHAINING_LIMIT_SECONDS} seconds (crossdeploy's jobs do, and refresh the credentials through ` +
            'credential_process); a profile with a larger duration_seconds must be lowered.',
          because: `AWS said: ${fault.message}`,
        },
      );
    case 'pass-role-denied':
      return single(
        `${fault.principal ?? 'the deploy role'} may not pass ${fault.resource ?? 'the execution role'}`,
        {
          cause: 'pass-role',
          likelihood: 'confirmed',
          account: target,
          summary: 'the deploy role must be allowed iam:PassRole of the execution role to CloudFormation',
          fix: 'Add the statement to the deploy role (target-account/template.yaml has it).',
          because: `AWS said: ${fault.message}`,
          ...(fault.resource ? { statements: [passRoleStatement(attempt.roleArn, fault.resource)] } : {}),
        },
      );
    default:
      break;
  }

  // AccessDenied (or an error we cannot name): every candidate, ranked by the evidence.
  const candidates: Candidate[] = [];
  const mismatch = roleAccountMismatch(attempt.roleArn, context.targetAccountId);
  if (mismatch) {
    candidates.push({
      cause: 'wrong-account',
      likelihood: 'confirmed',
      account: registry,
      summary: `the deploy role ARN must be in account ${context.targetAccountId}`,
      fix: `Fix deployRoleArn in the registry${where}: ${mismatch}. Use the DeployRoleArn output of the target account's stack.`,
      because: mismatch,
    });
  }

  // SourceIdentity: the message names the action, or a retry without it got through.
  const siDecision = evidence.simulation?.['sts:SetSourceIdentity'];
  const siConfirmed =
    fault.kind === 'source-identity-denied' || evidence.withoutSourceIdentity === 'succeeded';
  if (siConfirmed) {
    const callerSide = siDecision !== undefined && siDecision !== 'allowed';
    const targetSide = siDecision === 'allowed';
    const statements: PolicyFix[] = [];
    if (!targetSide && callerRole) statements.push(callerPolicyStatement(callerRole, attempt.roleArn));
    if (!callerSide && callerRole) {
      statements.push(
        trustPolicyStatement({
          deployRoleArn: attempt.roleArn,
          callerRoleArn: callerRole,
          ...(context.deployJobRoleArn ? { deployJobRoleArn: context.deployJobRoleArn } : {}),
          externalId: Boolean(attempt.externalId),
        }),
      );
    }
    candidates.push({
      cause: 'source-identity',
      likelihood: 'confirmed',
      account: callerSide ? orchestrator : targetSide ? target : orchestrator,
      summary: callerSide
        ? `the deployer role's policy must allow sts:SetSourceIdentity on ${attempt.roleArn}`
        : targetSide
          ? "the deploy role's trust policy must allow sts:SetSourceIdentity"
          : 'sts:SetSourceIdentity must be allowed on both sides: the caller policy and the trust policy',
      fix:
        "crossdeploy always sets SourceIdentity (it names the requester in the target account's CloudTrail), so " +
        "both the caller's permissions and the deploy role's trust policy must allow sts:SetSourceIdentity. " +
        (callerSide
          ? `The simulation says the caller's policy ${describeDecision(siDecision)}: fix it in the orchestrator account.`
          : targetSide
            ? 'The simulation says the caller may, so the trust policy in the target account is missing it.'
            : 'Check both statements below.'),
      because:
        fault.kind === 'source-identity-denied'
          ? `AWS said: ${fault.message}`
          : 'the same AssumeRole without SourceIdentity succeeded',
      statements,
    });
  }

  const assumeDecision = evidence.simulation?.['sts:AssumeRole'];
  const deniedBy = fault.deniedBy?.policy.toLowerCase();
  const callerSideByText = deniedBy !== undefined && !deniedBy.startsWith('resource');
  const targetSideByText = deniedBy?.startsWith('resource') === true;
  const callerLikelihood: Likelihood =
    (assumeDecision !== undefined && assumeDecision !== 'allowed') || callerSideByText
      ? 'confirmed'
      : assumeDecision === 'allowed'
        ? 'ruled-out'
        : 'possible';
  const callerRuledOut = callerLikelihood === 'ruled-out';
  candidates.push({
    cause: 'caller-policy',
    likelihood: callerLikelihood,
    account: orchestrator,
    summary: `orchestrator account${orchestrator.accountId ? ` ${orchestrator.accountId}` : ''}: the deployer role's policy must allow sts:AssumeRole and sts:SetSourceIdentity on exactly ${attempt.roleArn}`,
    fix:
      "Add the statement to the caller's role. For the deployer role, add the deploy role to registry/targets.yaml, " +
      'run `npm run registry:derive` and redeploy the orchestrator: template.yaml then grants exactly these roles.',
    ...(assumeDecision !== undefined
      ? { because: `iam:SimulatePrincipalPolicy: the caller's policy ${describeDecision(assumeDecision)}` }
      : callerSideByText
        ? { because: `AWS said: ${fault.message}` }
        : {}),
    ...(callerRole ? { statements: [callerPolicyStatement(callerRole, attempt.roleArn)] } : {}),
  });

  const trustLikelihood: Likelihood = targetSideByText ? 'confirmed' : callerRuledOut ? 'likely' : 'possible';
  candidates.push({
    cause: 'trust-policy',
    likelihood: trustLikelihood,
    account: target,
    summary: `target account ${targetAccount}: the deploy role's trust policy must name the orchestrator account with an aws:PrincipalArn condition on ${callerName}, for sts:AssumeRole and sts:SetSourceIdentity`,
    fix:
      "Deploy target-account/template.yaml with the orchestrator stack's DeployerRoleArn and DeployJobRoleArn " +
      "outputs as its parameters of the same names, or put this statement in the deploy role's trust policy.",
    ...(callerRuledOut
      ? { because: 'the caller side is allowed, so the denial comes from the target account' }
      : {}),
    ...(callerRole
      ? {
          statements: [
            trustPolicyStatement({
              deployRoleArn: attempt.roleArn,
              callerRoleArn: callerRole,
              ...(context.deployJobRoleArn ? { deployJobRoleArn: context.deployJobRoleArn } : {}),
              externalId: Boolean(attempt.externalId),
            }),
          ],
        }
      : {}),
  });

  candidates.push({
    cause: 'external-id',
    likelihood: attempt.externalId && callerRuledOut ? 'likely' : 'possible',
    account: registry,
    summary: attempt.externalId
      ? "the ExternalId in the registry must equal the trust policy's sts:ExternalId condition"
      : 'the trust policy may require an ExternalId the registry does not set',
    fix:
      (attempt.externalId
        ? `Compare externalId in the registry${where} with the trust policy's sts:ExternalId (the ExternalId parameter of the target stack).`
        : `Set externalId in the registry${where} to the trust policy's sts:ExternalId, or remove the condition.`) +
      ' STS silently ignores an ExternalId the trust policy does not require, so a wrong or missing one shows only as this denial.',
  });

  const seedMistake =
    role !== undefined &&
    callerRole !== undefined &&
    parseRoleArn(callerRole)?.name === role.name &&
    parseRoleArn(callerRole)?.account !== role.account;
  const existsLikelihood: Likelihood =
    evidence.roleExists === false
      ? 'confirmed'
      : evidence.roleExists === true
        ? 'ruled-out'
        : seedMistake
          ? 'likely'
          : 'possible';
  candidates.push({
    cause: 'role-missing',
    likelihood: existsLikelihood,
    account: registry,
    summary: `the role exists: ${attempt.roleArn} must name the deploy role (account and name), not another account's role or the caller's own role name`,
    fix:
      `Copy the DeployRoleArn output of the target account's stack into deployRoleArn in the registry${where}; ` +
      'if there is no such stack yet, deploy target-account/template.yaml in the target account.',
    ...(evidence.roleExists === false
      ? { because: `iam:GetRole found no role ${attempt.roleArn}` }
      : evidence.roleExists === true
        ? { because: 'iam:GetRole found the role' }
        : seedMistake
          ? {
              because: `the ARN has the target account but the caller's own role name (${role?.name}): the seed article's mistake`,
            }
          : {}),
  });

  if (siConfirmed) {
    // The SourceIdentity candidate explains the denial; the generic ones stay listed but below it.
    for (const candidate of candidates) {
      if (
        candidate.cause !== 'source-identity' &&
        candidate.cause !== 'wrong-account' &&
        candidate.likelihood !== 'ruled-out' &&
        candidate.likelihood !== 'confirmed'
      ) {
        candidate.likelihood = 'possible';
      }
    }
  } else if (evidence.withoutSourceIdentity === 'denied') {
    candidates.push({
      cause: 'source-identity',
      likelihood: 'ruled-out',
      account: orchestrator,
      summary: 'SourceIdentity is not the cause',
      fix: 'Nothing to do for SourceIdentity.',
      because: 'the same AssumeRole without SourceIdentity is denied too',
    });
  }

  const order: CauseCode[] = attempt.externalId
    ? ['wrong-account', 'source-identity', 'caller-policy', 'external-id', 'trust-policy', 'role-missing']
    : ['wrong-account', 'source-identity', 'caller-policy', 'trust-policy', 'external-id', 'role-missing'];
  candidates.sort(
    (a, b) => RANK[a.likelihood] - RANK[b.likelihood] || order.indexOf(a.cause) - order.indexOf(b.cause),
  );
  const caller = fault.principal ?? evidence.caller?.arn ?? callerName;
  return {
    fault,
    headline: `STS refused to let ${caller} assume ${attempt.roleArn} (${fault.code}). STS gives the same answer for several causes`,
    candidates,
    unchecked,
  };
}

/** A plain-text diagnosis of at most `maxLength` characters: what the deployment record carries. */
export function formatDiagnosis(diagnosis: Diagnosis, maxLength = 1000): string {
  const open = diagnosis.candidates.filter((c) => c.likelihood !== 'ruled-out');
  const ruledOut = diagnosis.candidates.filter((c) => c.likelihood === 'ruled-out');
  const where = (c: Candidate) =>
    c.account.kind === 'registry' || c.account.kind === 'caller'
      ? c.account.kind
      : `${c.account.kind}${c.account.accountId ? ` ${c.account.accountId}` : ''}`;
  const lines = [
    open.length > 1 ? `${diagnosis.headline}; check, in order:` : `${diagnosis.headline}.`,
    ...open.map((c, i) => `${i + 1}. [${c.likelihood}, ${where(c)}] ${c.summary};`),
  ];
  if (ruledOut.length > 0) lines.push(`Ruled out: ${ruledOut.map((c) => c.cause).join(', ')}.`);
  const tail = '`crossdeploy doctor <app> <env>` prints the exact policy statements.';
  let text = [...lines, tail].join('\n');
  if (text.length <= maxLength) return text;
  // Too long (long ARNs): keep the ranking, shorten the lines from the end.
  text = lines.join('\n');
  return text.length <= maxLength ? text : `${text.slice(0, maxLength - 1)}…`;
}
