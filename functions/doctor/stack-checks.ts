import { type AwsFault, classifyAwsError } from '#shared/diagnosis/aws-fault.ts';
import { awsError, type DoctorTarget, registryPath, result } from './checks.ts';
import type { CheckResult, TargetSession } from './ports.ts';

// Checks 6-8: the stack's status, the artifacts bucket, drift (a warning, never a failure)

/** `*_IN_PROGRESS` blocks an update (REVIEW_IN_PROGRESS is a stack that only has a change set). */
export function stackVerdict(target: DoctorTarget, status: string): CheckResult {
  const { stackName, region, executionRoleArn } = target.env;
  const id = 'stack-status';
  switch (status) {
    case 'UPDATE_ROLLBACK_FAILED':
      return result(
        id,
        'failed',
        `${stackName} is UPDATE_ROLLBACK_FAILED: it can be neither updated nor rolled back as it is`,
        {
          fix:
            'Continue the rollback (skip the resources that cannot roll back if needed): ' +
            `aws cloudformation continue-update-rollback --stack-name ${stackName} --region ${region} --role-arn ${executionRoleArn}`,
          account: { kind: 'target', accountId: target.env.accountId },
        },
      );
    case 'ROLLBACK_COMPLETE':
    case 'ROLLBACK_FAILED':
    case 'DELETE_FAILED':
      return result(id, 'failed', `${stackName} is ${status}: its creation failed and it cannot be updated`, {
        fix: `Delete the stack first, then deploy again: aws cloudformation delete-stack --stack-name ${stackName} --region ${region} --role-arn ${executionRoleArn}`,
        account: { kind: 'target', accountId: target.env.accountId },
      });
    default:
      if (status.endsWith('_IN_PROGRESS') && status !== 'REVIEW_IN_PROGRESS') {
        return result(id, 'failed', `${stackName} is ${status}: an operation is running`, {
          fix: 'Wait until it finishes (crossdeploy settles running stacks before it deploys or releases its lock).',
          account: { kind: 'target', accountId: target.env.accountId },
        });
      }
      return result(id, 'passed', `${stackName} is ${status}`);
  }
}

export async function checkStackStatus(target: DoctorTarget, session: TargetSession) {
  try {
    const status = await session.stackStatus(target.env.stackName);
    if (status === undefined) {
      return {
        exists: false,
        check: result(
          'stack-status',
          'passed',
          `${target.env.stackName} does not exist yet: the first deploy creates it`,
        ),
      };
    }
    return { exists: status !== 'DELETE_COMPLETE', check: stackVerdict(target, status) };
  } catch (error) {
    const fault = classifyAwsError(error);
    return {
      exists: false,
      check: result('stack-status', 'failed', `cannot read ${target.env.stackName} (${fault.code})`, {
        fix: `The deploy role needs cloudformation:DescribeStacks on ${target.env.stackName} (target-account/template.yaml grants it for stacks with its allowed prefix).`,
        account: { kind: 'target', accountId: target.env.accountId },
        awsError: awsError(fault),
      }),
    };
  }
}

export async function checkBucket(target: DoctorTarget, session: TargetSession): Promise<CheckResult> {
  const { artifactsBucket: bucket, region, accountId } = target.env;
  const here = { kind: 'target' as const, accountId };
  try {
    const actual = await session.bucketRegion(bucket);
    if (actual && actual !== region) {
      return result(
        'artifacts-bucket',
        'failed',
        `${bucket} is in ${actual}, not ${region}: Lambda reads code only from a bucket in the function's own region`,
        {
          fix: `Deploy target-account/template.yaml in ${region} too (one stack per account and region) and use that ArtifactsBucketName.`,
          account: { kind: 'registry' },
        },
      );
    }
    return result('artifacts-bucket', 'passed', `${bucket} is reachable${actual ? ` in ${actual}` : ''}`);
  } catch (error) {
    const fault = classifyAwsError(error);
    const regionFromError = (error as { region?: string }).region;
    if (regionFromError && regionFromError !== region) {
      return result('artifacts-bucket', 'failed', `${bucket} is in ${regionFromError}, not ${region}`, {
        fix: `Use a bucket in ${region}: deploy target-account/template.yaml there.`,
        account: { kind: 'registry' },
      });
    }
    if (fault.kind === 'not-found' || /^(NotFound|404)$/.test(fault.code)) {
      return result('artifacts-bucket', 'failed', `there is no bucket ${bucket}`, {
        fix: `Set artifactsBucket in ${registryPath(target)} to the target stack's ArtifactsBucketName output.`,
        account: { kind: 'registry' },
      });
    }
    return result('artifacts-bucket', 'failed', `the deploy role cannot reach ${bucket} (${fault.code})`, {
      fix: "The deploy role needs s3:ListBucket on the bucket and object access under the stack's prefix (target-account/template.yaml grants both).",
      account: here,
      awsError: awsError(fault),
    });
  }
}

export async function startDrift(target: DoctorTarget, session: TargetSession) {
  try {
    const detectionId = await session.startDriftDetection(target.env.stackName);
    return {
      detectionId,
      check: result('drift', 'running', 'drift detection started; it takes a minute or more'),
    };
  } catch (error) {
    const fault = classifyAwsError(error);
    return { check: driftDenied(target, fault) };
  }
}

export const driftDenied = (target: DoctorTarget, fault: AwsFault) =>
  result('drift', 'warning', `drift detection could not run (${fault.code})`, {
    fix: 'Drift detection reads every resource of the stack: deploy the target stack with EnableDriftDetection=true.',
    account: { kind: 'target', accountId: target.env.accountId },
    awsError: awsError(fault),
  });

/** Drift is a warning, never a failure: it says someone changed resources by hand (the seed's third pitfall). */
export function driftVerdict(
  status: Awaited<ReturnType<TargetSession['driftStatus']>>,
  target: DoctorTarget,
): CheckResult {
  if (status.state === 'running') return result('drift', 'running', 'drift detection is still running');
  if (status.state === 'failed') {
    return result('drift', 'warning', `drift detection failed: ${status.reason}`, {
      fix: 'Drift detection reads every resource of the stack: deploy the target stack with EnableDriftDetection=true.',
      account: { kind: 'target', accountId: target.env.accountId },
    });
  }
  if (status.stackDriftStatus === 'DRIFTED') {
    return result(
      'drift',
      'warning',
      `resources changed outside the template: ${status.drifted.join(', ') || '(see the console)'}`,
      {
        fix: "Put the change into the application's SAM template (or revert it by hand); the next deploy may otherwise fail or undo it.",
        account: { kind: 'target', accountId: target.env.accountId },
      },
    );
  }
  return result('drift', 'passed', `the stack is ${status.stackDriftStatus}`);
}
