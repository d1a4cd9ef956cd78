import { type AwsFault, classifyAwsError } from './aws-fault.ts';
import type { AssumeRoleEvidence, Decision, DiagnosisContext } from './diagnose.ts';
import { roleOfSession } from './statements.ts';

/**
 * The evidence a diagnosis ranks its candidates with, gathered through probes the adapters implement.
 * The ways to find out more after a denial: each is optional; a probe that fails leaves its question open.
 */
export interface AssumeRoleProbes {
  callerIdentity?(): Promise<{ arn: string; account: string }>;
  /** The caller's role ARN with its path (iam:GetRole on itself), when it is a role. */
  callerRoleArn?(sessionArn: string): Promise<string | undefined>;
  simulate?(
    principalArn: string,
    actions: ('sts:AssumeRole' | 'sts:SetSourceIdentity')[],
    resourceArn: string,
  ): Promise<Partial<Record<'sts:AssumeRole' | 'sts:SetSourceIdentity', Decision>>>;
  /** Resolves to true/false when it could look, undefined when the role is in an account it cannot read. */
  roleExists?(roleArn: string): Promise<boolean | undefined>;
  /** The same AssumeRole without SourceIdentity; resolves to true when it succeeds. */
  assumeWithoutSourceIdentity?(): Promise<boolean>;
}

const failure = (what: string, error: unknown) => `${what}: ${classifyAwsError(error).code}`;

/** Runs the probes that can narrow an AccessDenied down. Never throws: what fails stays unchecked. */
export async function gatherAssumeRoleEvidence(
  fault: AwsFault,
  context: DiagnosisContext,
  probes: AssumeRoleProbes,
): Promise<AssumeRoleEvidence> {
  const evidence: AssumeRoleEvidence = { unchecked: [] };
  const unchecked = evidence.unchecked as string[];
  if (fault.kind !== 'access-denied' && fault.kind !== 'source-identity-denied') return evidence;
  if (probes.callerIdentity) {
    try {
      evidence.caller = await probes.callerIdentity();
    } catch (error) {
      unchecked.push(failure("the caller's identity", error));
    }
  }
  const sessionArn = evidence.caller?.arn ?? fault.principal;
  const pathless = sessionArn ? roleOfSession(sessionArn) : undefined;
  if (sessionArn && probes.callerRoleArn && pathless) {
    try {
      const full = await probes.callerRoleArn(sessionArn);
      if (full) evidence.callerRoleArn = full;
    } catch (error) {
      unchecked.push(failure("the caller's role path (iam:GetRole)", error));
    }
  }
  const principal = evidence.callerRoleArn ?? context.expectedCallerRoleArn ?? pathless;
  if (probes.simulate && principal) {
    try {
      evidence.simulation = await probes.simulate(
        principal,
        ['sts:AssumeRole', 'sts:SetSourceIdentity'],
        context.attempt.roleArn,
      );
    } catch (error) {
      unchecked.push(failure("the caller's policy (iam:SimulatePrincipalPolicy)", error));
    }
  } else if (!probes.simulate) {
    unchecked.push("the caller's policy (no iam:SimulatePrincipalPolicy here)");
  }
  if (probes.roleExists) {
    try {
      const exists = await probes.roleExists(context.attempt.roleArn);
      if (exists !== undefined) evidence.roleExists = exists;
      else unchecked.push('whether the role exists (it is in an account the caller cannot read)');
    } catch (error) {
      unchecked.push(failure('whether the role exists (iam:GetRole)', error));
    }
  }
  if (probes.assumeWithoutSourceIdentity && fault.kind === 'access-denied') {
    try {
      evidence.withoutSourceIdentity = (await probes.assumeWithoutSourceIdentity()) ? 'succeeded' : 'denied';
    } catch (error) {
      unchecked.push(failure('AssumeRole without SourceIdentity', error));
    }
  }
  return evidence;
}
