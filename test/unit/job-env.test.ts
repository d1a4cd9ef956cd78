import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { JobFailedError, JobStartError } from '#shared/errors.ts';
import {
  buildJobEnvironment,
  buildOutputKey,
  deployJobEnvironment,
  jobIdempotencyToken,
  readBuildOutput,
} from '#shared/jobs/job-env.ts';
import { roleSessionName, sourceIdentity } from '#shared/registry/requester.ts';
import { fixtureDeployment, fixtureTarget } from '#test/support/run-buildspec.ts';

const SHA = 'a'.repeat(64);
const COMMIT = 'b'.repeat(40);
const target = fixtureTarget;
const deployment = fixtureDeployment;

/** The variable names docs/design.md's "Job contract" lists, per part, split into read and exported. */
function contract() {
  const doc = readFileSync(new URL('../../docs/design.md', import.meta.url), 'utf8');
  const section = doc.slice(
    doc.indexOf('## Job contract'),
    doc.indexOf('\n## ', doc.indexOf('## Job contract') + 1),
  );
  const part = (from: string, to: string) => section.slice(section.indexOf(from), section.indexOf(to));
  const names = (text: string) => [...text.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1]!);
  const split = (text: string) => {
    const [reads = '', exports = ''] = text.split('exports');
    return { reads: names(reads), exports: names(exports) };
  };
  return {
    common: names(part('Common:', 'Build:')),
    build: split(part('Build:', 'Deploy:')),
    deploy: split(part('Deploy:', 'Local mode only:')),
  };
}

describe('buildJobEnvironment', () => {
  it('hands the build job exactly the contract variables', () => {
    const env = buildJobEnvironment(deployment(), target(), { outputBucket: 'crossdeploy-output' });
    expect(env).toEqual({
      DEPLOYMENT_ID: '01JCROSSDEPLOY0000000000AB',
      CROSSDEPLOY_JOB: 'build',
      APPLICATION: 'hello-world',
      ENVIRONMENT: 'prod',
      SOURCE_REF: 'release/1.2',
      TEMPLATE_PATH: 'app/template.yaml',
      OUTPUT_BUCKET: 'crossdeploy-output',
      OUTPUT_KEY: 'builds/hello-world/01JCROSSDEPLOY0000000000AB.zip',
    });
    const { common, build } = contract();
    expect(Object.keys(env).sort()).toEqual([...common, ...build.reads].sort());
  });

  it("falls back to the application's default ref", () => {
    const env = buildJobEnvironment(deployment({ ref: undefined }), target(), { outputBucket: 'b' });
    expect(env.SOURCE_REF).toBe('main');
  });

  it('refuses a deployment for another target', () => {
    expect(() =>
      buildJobEnvironment(deployment({ environment: 'staging' }), target(), { outputBucket: 'b' }),
    ).toThrow(JobStartError);
  });

  it('refuses a deployment id that cannot name a file', () => {
    expect(() =>
      buildJobEnvironment(deployment({ deploymentId: '../../etc/passwd' }), target(), { outputBucket: 'b' }),
    ).toThrow(JobStartError);
  });
});

describe('deployJobEnvironment', () => {
  it('hands the deploy job exactly the contract variables, from the recorded build output and the registry', () => {
    const d = deployment();
    const env = deployJobEnvironment(d, target());
    expect(env).toEqual({
      DEPLOYMENT_ID: '01JCROSSDEPLOY0000000000AB',
      CROSSDEPLOY_JOB: 'deploy',
      APPLICATION: 'hello-world',
      ENVIRONMENT: 'prod',
      OUTPUT_BUCKET: 'crossdeploy-output',
      OUTPUT_KEY: 'builds/hello-world/01JCROSSDEPLOY0000000000AA.zip',
      OUTPUT_VERSION_ID: 'v3.xyz_Version-Id',
      OUTPUT_SHA256: SHA,
      TARGET_ACCOUNT_ID: '222222222222',
      TARGET_REGION: 'eu-west-1',
      DEPLOY_ROLE_ARN: 'arn:aws:iam::222222222222:role/crossdeploy/crossdeploy-deploy',
      EXTERNAL_ID: 'crossdeploy-prod-7f3a',
      SOURCE_IDENTITY: sourceIdentity(d.requester),
      ROLE_SESSION_NAME: roleSessionName(d.deploymentId),
      STACK_NAME: 'hello-world-prod',
      ARTIFACTS_BUCKET: 'crossdeploy-artifacts-222222222222-eu-west-1',
      EXECUTION_ROLE_ARN: 'arn:aws:iam::222222222222:role/crossdeploy/crossdeploy-cfn-exec',
      CAPABILITIES: 'CAPABILITY_IAM CAPABILITY_AUTO_EXPAND',
      PARAMETER_OVERRIDES_JSON: '{"LogLevel":"info","Stage":"prod"}',
      DRY_RUN: 'false',
      CHANGE_SET_ONLY: 'false',
      TEMPLATE_POLICY_EXCEPTIONS_JSON: '{"allowedTrustPrincipals":[],"allowedManagedPolicies":[]}',
    });
    const { common, deploy } = contract();
    expect(Object.keys(env).sort()).toEqual([...common, ...deploy.reads].sort());
  });

  it('passes an empty ExternalId, no capabilities and no overrides as empty values', () => {
    const env = deployJobEnvironment(deployment({ environment: 'staging' }), target('staging'));
    expect(env).toMatchObject({ EXTERNAL_ID: '', CAPABILITIES: '', PARAMETER_OVERRIDES_JSON: '{}' });
  });

  it("asks a reviewed environment's job for the change set only, but never a dry run's", () => {
    const reviewed = (approval: 'required' | 'on-broadening' | 'none') => {
      const t = target();
      return { ...t, env: { ...t.env, approval } };
    };
    expect(deployJobEnvironment(deployment(), reviewed('required')).CHANGE_SET_ONLY).toBe('true');
    expect(deployJobEnvironment(deployment(), reviewed('on-broadening')).CHANGE_SET_ONLY).toBe('true');
    expect(deployJobEnvironment(deployment(), reviewed('none')).CHANGE_SET_ONLY).toBe('false');
    expect(deployJobEnvironment(deployment({ dryRun: true }), reviewed('required')).CHANGE_SET_ONLY).toBe(
      'false',
    );
  });

  it('marks a dry run', () => {
    expect(deployJobEnvironment(deployment({ dryRun: true }), target()).DRY_RUN).toBe('true');
  });

  it('refuses to start without a recorded build output', () => {
    expect(() => deployJobEnvironment(deployment({ buildOutput: undefined }), target())).toThrow(
      JobStartError,
    );
  });

  it('refuses a malformed build output record', () => {
    const d = deployment();
    const bad = deployment({ buildOutput: { ...d.buildOutput!, sha256: 'not-a-digest' } });
    expect(() => deployJobEnvironment(bad, target())).toThrow(JobStartError);
  });

  it('refuses when the registry now names another account than the deployment recorded', () => {
    expect(() => deployJobEnvironment(deployment({ targetAccount: '333333333333' }), target())).toThrow(
      /account is now 222222222222, but deployment recorded 333333333333/,
    );
  });

  describe('a rollback', () => {
    // What release N recorded (registry.ts deployParameters), before the registry changed.
    const releaseParameters = {
      stackName: 'hello-world-prod',
      region: 'eu-west-1',
      capabilities: ['CAPABILITY_IAM'],
      parameterOverrides: { Stage: 'prod', LogLevel: 'debug', Legacy: 'on' },
      executionRoleArn: 'arn:aws:iam::222222222222:role/crossdeploy/crossdeploy-cfn-exec-v1',
    };
    const rollback = (parameters: unknown) =>
      deployment({ kind: 'rollback', rollbackOf: 1, parameters: parameters as Record<string, unknown> });

    it("deploys release N's recorded parameters, not the registry's current ones", () => {
      const env = deployJobEnvironment(rollback(releaseParameters), target());
      expect(env).toMatchObject({
        PARAMETER_OVERRIDES_JSON: '{"Legacy":"on","LogLevel":"debug","Stage":"prod"}',
        CAPABILITIES: 'CAPABILITY_IAM',
        EXECUTION_ROLE_ARN: 'arn:aws:iam::222222222222:role/crossdeploy/crossdeploy-cfn-exec-v1',
        // Where it goes and how it gets there stay the registry's.
        STACK_NAME: 'hello-world-prod',
        DEPLOY_ROLE_ARN: 'arn:aws:iam::222222222222:role/crossdeploy/crossdeploy-deploy',
      });
    });

    it("is the only kind that does: a promotion uses the target's registry parameters", () => {
      const env = deployJobEnvironment(
        deployment({ kind: 'promotion', parameters: releaseParameters }),
        target(),
      );
      expect(env.PARAMETER_OVERRIDES_JSON).toBe('{"LogLevel":"info","Stage":"prod"}');
    });

    it.each([
      ['no recorded parameters', undefined],
      ['overrides that are not strings', { ...releaseParameters, parameterOverrides: { Stage: 1 } }],
      ['capabilities that are not a list', { ...releaseParameters, capabilities: 'CAPABILITY_IAM' }],
      ['no execution role', { ...releaseParameters, executionRoleArn: undefined }],
    ])('refuses to start with %s', (_what, parameters) => {
      expect(() => deployJobEnvironment(rollback(parameters), target())).toThrow(JobStartError);
    });

    it('refuses parameters recorded for another stack than the registry names now', () => {
      expect(() =>
        deployJobEnvironment(rollback({ ...releaseParameters, stackName: 'hello-world-old' }), target()),
      ).toThrow(/recorded stack hello-world-old in eu-west-1, but the registry now says hello-world-prod/);
    });
  });

  it('holds nothing that looks like a credential', () => {
    for (const env of [
      deployJobEnvironment(deployment(), target()),
      buildJobEnvironment(deployment(), target(), { outputBucket: 'b' }),
    ]) {
      for (const [name, value] of Object.entries(env)) {
        expect(name).not.toMatch(/SECRET|PASSWORD|TOKEN|ACCESS_KEY|CREDENTIAL/);
        expect(value).not.toMatch(/\b(?:AKIA|ASIA)[A-Z0-9]{16}\b|aws_secret_access_key|aws_session_token/i);
      }
    }
  });
});

describe('jobIdempotencyToken', () => {
  it('is the same for every attempt of one job and differs between jobs and deployments', () => {
    const token = jobIdempotencyToken('01JA', 'build');
    expect(token).toBe(jobIdempotencyToken('01JA', 'build'));
    expect(token).not.toBe(jobIdempotencyToken('01JA', 'deploy'));
    expect(token).not.toBe(jobIdempotencyToken('01JB', 'build'));
    expect(token).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('readBuildOutput', () => {
  const exported = { BUILD_OUTPUT_VERSION_ID: 'v1', BUILD_OUTPUT_SHA256: SHA, RESOLVED_COMMIT: COMMIT };

  it('turns the exported variables into the build output record', () => {
    expect(readBuildOutput(exported, 'bucket', buildOutputKey('hello-world', '01JA'))).toEqual({
      bucket: 'bucket',
      key: 'builds/hello-world/01JA.zip',
      versionId: 'v1',
      sha256: SHA,
      resolvedCommit: COMMIT,
    });
  });

  it.each(Object.keys(exported))('fails the build when %s is missing', (name) => {
    const partial: Record<string, string> = { ...exported };
    delete partial[name];
    const error = (() => {
      try {
        readBuildOutput(partial, 'bucket', 'key');
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toBeInstanceOf(JobFailedError);
    expect(error).toMatchObject({ code: 'BUILD_FAILED', details: { variable: name } });
  });

  it.each([
    ['BUILD_OUTPUT_SHA256', 'ABC'],
    ['RESOLVED_COMMIT', 'main'],
    ['BUILD_OUTPUT_VERSION_ID', 'has space'],
  ])('fails the build when %s is malformed (%j)', (name, value) => {
    expect(() => readBuildOutput({ ...exported, [name]: value }, 'bucket', 'key')).toThrow(JobFailedError);
  });

  it('names the variables the build buildspec exports, as the contract does', () => {
    // BUILD_COMMIT_TIME is optional: job-events reads it (readCommitTime), a build without it still counts.
    expect([...Object.keys(exported), 'BUILD_COMMIT_TIME'].sort()).toEqual(contract().build.exports.sort());
  });
});

describe('the template policy exceptions in the deploy job contract', () => {
  it("hands the job the environment's allowedTrustPrincipals and allowedManagedPolicies", () => {
    const base = fixtureTarget('prod');
    const withExceptions = {
      ...base,
      env: {
        ...base.env,
        allowedTrustPrincipals: ['arn:aws:iam::333333333333:role/auditor'],
        allowedManagedPolicies: ['PowerUserAccess'],
      },
    };
    expect(
      JSON.parse(deployJobEnvironment(fixtureDeployment(), withExceptions).TEMPLATE_POLICY_EXCEPTIONS_JSON!),
    ).toEqual({
      allowedTrustPrincipals: ['arn:aws:iam::333333333333:role/auditor'],
      allowedManagedPolicies: ['PowerUserAccess'],
    });
  });
});
