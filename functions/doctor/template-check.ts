import { checkTemplateText } from '#shared/template-policy/engine.ts';
import { applicationScope } from '#shared/template-policy/rules.ts';
import { type DoctorTarget, type DoctorTemplate, registryPath, result } from './checks.ts';
import type { CheckResult } from './ports.ts';

/**
 * `crossdeploy doctor --template`: the check of a built template, which only the CLI has. It lives apart from
 * the other checks so that the doctor's Lambda, which never gets a template, does not carry the template
 * policy engine and its YAML parser (test/template/bundle-contents.test.ts).
 */

// Template policy (README "Guard rails") -------------------------------------------------------------------

/**
 * The deploy job's template policy (functions/shared/template-policy) on a given built template, with this
 * environment's account, region, stack name, parameters and registry exceptions, as the job would run it.
 */
export function checkTemplatePolicy(target: DoctorTarget, template: DoctorTemplate): CheckResult {
  const { env } = target;
  const report = checkTemplateText(template.text, {
    accountId: env.accountId,
    region: env.region,
    stackName: env.stackName,
    ...applicationScope(env.deployRoleArn, env.accountId, env.region, env.stackName),
    parameterOverrides: env.parameterOverrides,
    allowedTrustPrincipals: env.allowedTrustPrincipals ?? [],
    allowedManagedPolicies: env.allowedManagedPolicies ?? [],
    ...(template.loadNested ? { loadNested: template.loadNested } : {}),
  });
  const used = report.exceptionsUsed.map(
    (use) => `${use.resource} uses the registry exception ${use.kind}: ${use.value}`,
  );
  if (report.findings.length === 0) {
    return result('template-policy', 'passed', [`${template.path}: no findings`, ...used].join('\n'));
  }
  const lines = report.findings.map((f) => `${f.resource}: ${f.message} [${f.rule}]`);
  return result(
    'template-policy',
    'failed',
    [`${template.path}: the deploy job would refuse it (TEMPLATE_POLICY_VIOLATION)`, ...lines, ...used].join(
      '\n',
    ),
    {
      fix: `Change the template, or name an exact exception in ${registryPath(target)}.allowedTrustPrincipals / allowedManagedPolicies (README "Guard rails").`,
      account: { kind: 'registry' },
    },
  );
}
