/**
 * The template policy check as a command, for the deploy job (bundled into buildspecs/deploy.yml by
 * scripts/template-policy-bundle.ts and run with the job image's node) and for anyone checking a template by
 * hand. Exit 0: no finding. Exit 3: refused, each finding on stderr and, with --refused-file, in that file.
 * Exit 2: the command itself was called wrongly. Never prints template values other than in findings.
 *
 *   node template-policy.mjs --template=PATH --account-id=ID --region=REGION --stack-name=NAME
 *     [--deploy-role-arn=ARN (gives the prefix and boundary)] [--role-prefix=PREFIX] [--boundary-arn=ARN] [--parameters-json=JSON] [--exceptions-json=JSON]
 *     [--refused-file=PATH] [--exceptions-file=PATH]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { checkTemplateText, type PolicyTarget } from './engine.ts';
import { nestedTemplatesBeside } from './files.ts';
import { applicationScope } from './rules.ts';

/** Exported variables (CodeBuild) have a size limit: the reasons are cut to this. */
const MAX_REASON = 1000;

function usage(message: string): never {
  console.error(`crossdeploy template policy: ${message}`);
  process.exit(2);
}

function stringMap(json: string, what: string): Record<string, string> {
  const value: unknown = json === '' ? {} : JSON.parse(json);
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    usage(`${what} is not a JSON object`);
  for (const item of Object.values(value))
    if (typeof item !== 'string') usage(`${what} has a non-string value`);
  return value as Record<string, string>;
}

function exceptions(json: string): Pick<PolicyTarget, 'allowedTrustPrincipals' | 'allowedManagedPolicies'> {
  const value: unknown = json === '' ? {} : JSON.parse(json);
  const list = (key: string): string[] => {
    const items = (value as Record<string, unknown>)[key] ?? [];
    if (!Array.isArray(items) || items.some((item) => typeof item !== 'string')) {
      usage(`--exceptions-json ${key} is not a list of strings`);
    }
    return items as string[];
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    usage('--exceptions-json is not a JSON object');
  return {
    allowedTrustPrincipals: list('allowedTrustPrincipals'),
    allowedManagedPolicies: list('allowedManagedPolicies'),
  };
}

export function main(argv: string[]): number {
  const { values } = parseArgs({
    args: argv,
    options: {
      template: { type: 'string' },
      'account-id': { type: 'string' },
      region: { type: 'string' },
      'stack-name': { type: 'string' },
      'deploy-role-arn': { type: 'string' },
      'role-prefix': { type: 'string' },
      'boundary-arn': { type: 'string' },
      'parameters-json': { type: 'string', default: '' },
      'exceptions-json': { type: 'string', default: '' },
      'refused-file': { type: 'string' },
      'exceptions-file': { type: 'string' },
    },
    strict: true,
  });
  const { template, region } = values;
  const accountId = values['account-id'];
  const stackName = values['stack-name'];
  if (!template || !accountId || !region || !stackName)
    usage('--template, --account-id, --region and --stack-name are required');
  const scope = applicationScope(values['deploy-role-arn'] ?? '', accountId, region, stackName);
  let target: PolicyTarget;
  try {
    target = {
      accountId,
      region,
      stackName,
      rolePrefix: values['role-prefix'] || scope.rolePrefix,
      boundaryArn: values['boundary-arn'] || scope.boundaryArn,
      parameterOverrides: stringMap(values['parameters-json'], '--parameters-json'),
      ...exceptions(values['exceptions-json']),
    };
  } catch (error) {
    usage((error as Error).message);
  }
  target.loadNested = nestedTemplatesBeside(template);
  const report = checkTemplateText(readFileSync(template, 'utf8'), target);
  if (values['exceptions-file'] && report.exceptionsUsed.length > 0) {
    writeFileSync(values['exceptions-file'], JSON.stringify(report.exceptionsUsed));
  }
  for (const use of report.exceptionsUsed) {
    console.error(
      `crossdeploy: template policy: ${use.resource} uses the registry exception ${use.kind}: ${use.value}`,
    );
  }
  if (report.findings.length === 0) {
    console.error('crossdeploy: template policy: no findings');
    return 0;
  }
  for (const finding of report.findings) {
    console.error(
      `crossdeploy: template policy refuses ${finding.resource}: ${finding.message} [${finding.rule}]`,
    );
  }
  if (values['refused-file']) {
    const reasons = report.findings.map((f) => `${f.resource}: ${f.message} [${f.rule}]`).join('; ');
    writeFileSync(
      values['refused-file'],
      reasons.length <= MAX_REASON ? reasons : `${reasons.slice(0, MAX_REASON - 3)}...`,
    );
  }
  return 3;
}

if (import.meta.main || process.env.CROSSDEPLOY_TEMPLATE_POLICY_BUNDLE === '1') {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (error) {
    usage((error as Error).message);
  }
}
