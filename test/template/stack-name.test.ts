import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isRecord, loadTemplate } from '../../scripts/cfn-yaml.ts';

/**
 * The orchestrator names resources after its stack (`${AWS::StackName}-assume-target-role`, ...). Each name
 * has a service limit, so the stack name has one too: the tightest of them. docs/aws.md states it; this test
 * computes it from the template, so a new named resource cannot silently make the documented limit wrong.
 */

const root = resolve(import.meta.dirname, '../..');
const template = loadTemplate(join(root, 'template.yaml'));

/** Name properties per resource type, with the service's maximum length. */
const LIMITS: Record<string, Record<string, number>> = {
  'AWS::Serverless::Function': { FunctionName: 64 },
  'AWS::Lambda::Function': { FunctionName: 64 },
  'AWS::IAM::Role': { RoleName: 64 },
  'AWS::IAM::ManagedPolicy': { ManagedPolicyName: 128 },
  'AWS::Serverless::StateMachine': { Name: 80 },
  'AWS::StepFunctions::StateMachine': { StateMachineName: 80 },
  'AWS::Scheduler::ScheduleGroup': { Name: 64 },
  'AWS::CodeBuild::Project': { Name: 150 },
  'AWS::Logs::LogGroup': { LogGroupName: 512 },
  'AWS::SecretsManager::Secret': { Name: 512 },
  'AWS::DynamoDB::Table': { TableName: 255 },
  'AWS::S3::Bucket': { BucketName: 63 },
};

// A CloudFormation Fn::Sub variable, not a JavaScript template.
const STACK_NAME = ['$', '{AWS::StackName}'].join('');

/** The characters a name adds to the stack name, when it is the stack name plus fixed text. */
function fixedLength(value: unknown): number | undefined {
  if (isRecord(value) && value.Ref === 'AWS::StackName') return 0;
  const sub = isRecord(value) ? value['Fn::Sub'] : undefined;
  if (typeof sub !== 'string' || !sub.includes(STACK_NAME)) return undefined;
  // Other variables (region, account) are counted at their longest.
  const others = sub.replaceAll(STACK_NAME, '').replace(/\$\{AWS::Region\}/g, 'x'.repeat(14));
  return others
    .replace(/\$\{AWS::AccountId\}/g, 'x'.repeat(12))
    .replace(/\$\{AWS::Partition\}/g, 'aws-us-gov').length;
}

function stackNameLimit(): { limit: number; by: string } {
  let best = { limit: 128, by: 'CloudFormation itself' };
  for (const [id, resource] of Object.entries(template.Resources)) {
    for (const [property, max] of Object.entries(LIMITS[resource.Type] ?? {})) {
      const fixed = fixedLength(resource.Properties?.[property]);
      if (fixed === undefined) continue;
      if (max - fixed < best.limit) best = { limit: max - fixed, by: `${id}.${property} (at most ${max})` };
    }
  }
  return best;
}

describe('the orchestrator stack name', () => {
  it('has the length limit docs/aws.md states, computed from the names the template builds from it', () => {
    const { limit, by } = stackNameLimit();
    const doc = readFileSync(join(root, 'docs/aws.md'), 'utf8');
    const stated = /stack name\s+of at most (\d+) characters/.exec(doc)?.[1];
    expect({ stated: Number(stated), by }).toEqual({ stated: limit, by });
  });
});
