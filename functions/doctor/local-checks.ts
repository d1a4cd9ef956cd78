import { roleAccountMismatch } from '#shared/diagnosis/diagnose.ts';
import { parseRoleArn } from '#shared/diagnosis/statements.ts';
import { type DoctorTarget, registryPath, result } from './checks.ts';
import type { CheckResult } from './ports.ts';

// The checks that need no AWS call: the registry entry and a built template.

// 1. Registry ------------------------------------------------------------------------------------------------

export const PARTITION_OF_REGION = (region: string) =>
  region.startsWith('cn-') ? 'aws-cn' : region.startsWith('us-gov-') ? 'aws-us-gov' : 'aws';

/** Caught before any AWS call: the seed article's role_arn named the wrong account. */
export function checkRegistry(target: DoctorTarget): CheckResult {
  const { env } = target;
  const at = registryPath(target);
  const failures: string[] = [];
  const warnings: string[] = [];
  for (const field of ['deployRoleArn', 'executionRoleArn'] as const) {
    const mismatch = roleAccountMismatch(env[field], env.accountId);
    if (mismatch) failures.push(`${field}: ${mismatch}`);
    const partition = parseRoleArn(env[field])?.partition;
    if (partition && partition !== PARTITION_OF_REGION(env.region)) {
      failures.push(`${field}: partition ${partition} does not match region ${env.region}`);
    }
  }
  if (env.deployRoleArn === env.executionRoleArn) {
    failures.push(
      'deployRoleArn and executionRoleArn are the same role: CloudFormation must act through its own role',
    );
  }
  // Bucket names from target-account/template.yaml carry the account and region: a copied line shows here.
  for (const account of env.artifactsBucket.match(/\d{12}/g) ?? []) {
    if (account !== env.accountId)
      warnings.push(`artifactsBucket names account ${account}, not ${env.accountId}`);
  }
  const bucketRegion = /(?:^|-)((?:[a-z]{2}(?:-gov)?)-[a-z]+-\d)(?:-|$)/.exec(env.artifactsBucket)?.[1];
  if (bucketRegion && bucketRegion !== env.region) {
    warnings.push(`artifactsBucket names region ${bucketRegion}, not ${env.region}`);
  }
  if (failures.length > 0) {
    return result('registry', 'failed', `${failures.join('; ')}. Nothing was sent to AWS.`, {
      fix:
        `Fix ${at} in the registry: use the DeployRoleArn and ExecutionRoleArn outputs of the target account's ` +
        'stack (target-account/template.yaml), which are always in that account.',
      account: { kind: 'registry' },
    });
  }
  if (warnings.length > 0) {
    return result('registry', 'warning', warnings.join('; '), {
      fix: `Check artifactsBucket in ${at}: use the ArtifactsBucketName output of the target stack in ${env.region}.`,
      account: { kind: 'registry' },
    });
  }
  return result(
    'registry',
    'passed',
    `both roles are in account ${env.accountId}; region ${env.region}; stack ${env.stackName}${env.externalId ? '; ExternalId set' : ''}`,
  );
}
