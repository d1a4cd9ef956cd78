import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256Hex } from '#shared/jobs/job-specs.ts';
import { parseRegistry } from '#shared/registry/registry.ts';
import { parseCfnYaml } from '../../scripts/cfn-yaml.ts';
import {
  BLOCK_NAMES,
  type Blocks,
  buildSourceAccessLines,
  DeriveError,
  derive,
  describeProblems,
  jobSpecDigestLines,
  registryGrants,
  renderTemplate,
  syncBundledRegistry,
  targetPrefixProblems,
  WAIT_MARGIN_SECONDS,
  waitSecondsLines,
} from '../../scripts/registry-derive.ts';

const root = resolve(import.meta.dirname, '../..');

const environment = (account: string, overrides: Record<string, unknown> = {}) => ({
  accountId: account,
  region: 'eu-west-1',
  deployRoleArn: `arn:aws:iam::${account}:role/crossdeploy/crossdeploy-deploy`,
  executionRoleArn: `arn:aws:iam::${account}:role/crossdeploy/crossdeploy-cfn-exec`,
  stackName: `app-${account}`,
  artifactsBucket: `crossdeploy-artifacts-${account}-eu-west-1`,
  allowedRequesters: {},
  ...overrides,
});

describe('the registry-derived parts of template.yaml', () => {
  it('are up to date (npm run registry:derive)', () => {
    const result = derive(root, { write: false });
    expect(describeProblems(result)).toEqual([]);
  });

  it('include the registry module the functions bundle', () => {
    expect(syncBundledRegistry(root, { write: false })).toBe(true);
  });
});

describe('registryGrants', () => {
  const registry = parseRegistry({
    applications: {
      one: {
        source: {
          type: 'GITHUB',
          location: 'https://github.com/example/one.git',
          connectionArn: 'arn:aws:codeconnections:eu-west-1:123456789012:connection/aaaa',
        },
        environments: { prod: environment('222222222222'), staging: environment('111111111111') },
      },
      two: {
        source: {
          type: 'BITBUCKET',
          location: 'https://bitbucket.org/example/two.git',
          connectionArn: 'arn:aws:codestar-connections:eu-west-1:123456789012:connection/bbbb',
        },
        // Same deploy role as `one`'s staging: granted once.
        environments: { staging: environment('111111111111', { stackName: 'two-staging' }) },
      },
      three: {
        source: {
          type: 'CODECOMMIT',
          location: 'https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/three',
        },
        environments: { dev: environment('333333333333') },
      },
    },
  });

  it('lists every deploy role once, sorted', () => {
    expect(registryGrants(registry).deployRoleArns).toEqual([
      'arn:aws:iam::111111111111:role/crossdeploy/crossdeploy-deploy',
      'arn:aws:iam::222222222222:role/crossdeploy/crossdeploy-deploy',
      'arn:aws:iam::333333333333:role/crossdeploy/crossdeploy-deploy',
    ]);
  });

  it('grants each connection under its own service prefix, and CodeCommit pulls per repository', () => {
    const yaml = `Statement:\n${buildSourceAccessLines(registryGrants(registry)).join('\n')}\n`;
    expect(parseCfnYaml(yaml)).toEqual({
      Statement: [
        {
          Sid: 'UseRegistryConnections',
          Effect: 'Allow',
          Action: [
            'codeconnections:GetConnection',
            'codeconnections:GetConnectionToken',
            'codeconnections:UseConnection',
          ],
          Resource: ['arn:aws:codeconnections:eu-west-1:123456789012:connection/aaaa'],
        },
        {
          Sid: 'UseRegistryLegacyConnections',
          Effect: 'Allow',
          Action: [
            'codestar-connections:GetConnection',
            'codestar-connections:GetConnectionToken',
            'codestar-connections:UseConnection',
          ],
          Resource: ['arn:aws:codestar-connections:eu-west-1:123456789012:connection/bbbb'],
        },
        {
          Sid: 'PullRegistryCodeCommitRepositories',
          Effect: 'Allow',
          Action: 'codecommit:GitPull',
          // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation/ASL placeholder, not JavaScript
          Resource: [{ 'Fn::Sub': 'arn:${AWS::Partition}:codecommit:eu-west-1:${AWS::AccountId}:three' }],
        },
      ],
    });
  });

  it('grants no source access when every repository is public', () => {
    expect(
      buildSourceAccessLines({ deployRoleArns: [], connectionArns: [], codeCommitRepositories: [] }),
    ).toEqual(['# (the registry has no CodeConnections or CodeCommit sources)']);
  });
});

describe('targetPrefixProblems', () => {
  /** An environment onboarded with target-account/template.yaml for `prefix`. */
  const onboarded = (prefix: string, overrides: Record<string, unknown> = {}) =>
    environment('222222222222', {
      deployRoleArn: `arn:aws:iam::222222222222:role/crossdeploy/crossdeploy-${prefix}-deploy-eu-west-1`,
      executionRoleArn: `arn:aws:iam::222222222222:role/crossdeploy/crossdeploy-${prefix}-cfn-exec-eu-west-1`,
      artifactsBucket: `crossdeploy-222222222222-eu-west-1-${prefix}`,
      stackName: `${prefix}-api-prod`,
      ...overrides,
    });
  const registryOf = (environments: Record<string, unknown>) =>
    parseRegistry({
      applications: {
        api: { source: { type: 'GITHUB', location: 'https://github.com/example/api.git' }, environments },
      },
    });

  it('accepts environments whose stack, roles and bucket belong to one application prefix', () => {
    expect(targetPrefixProblems(registryOf({ prod: onboarded('hello') }))).toEqual([]);
  });

  it('names a stack outside the prefix of its deploy role: every change set would be refused', () => {
    expect(
      targetPrefixProblems(registryOf({ prod: onboarded('hello', { stackName: 'billing-prod' }) })),
    ).toEqual([
      "applications.api.environments.prod.stackName: billing-prod does not start with 'hello-', the application prefix of its deploy role crossdeploy-hello-deploy-eu-west-1",
    ]);
  });

  it("names an execution role or bucket of another prefix than the deploy role's", () => {
    const problems = targetPrefixProblems(
      registryOf({
        prod: onboarded('hello', {
          executionRoleArn:
            'arn:aws:iam::222222222222:role/crossdeploy/crossdeploy-billing-cfn-exec-eu-west-1',
          artifactsBucket: 'crossdeploy-222222222222-eu-west-1-billing',
        }),
      }),
    );
    expect(problems).toEqual([
      'applications.api.environments.prod.executionRoleArn: expected crossdeploy-hello-cfn-exec-eu-west-1 (the bootstrap of prefix hello in eu-west-1)',
      'applications.api.environments.prod.artifactsBucket: expected crossdeploy-222222222222-eu-west-1-hello (the bootstrap of prefix hello in eu-west-1)',
    ]);
  });

  it("names a deploy role of another region than the environment's", () => {
    const problems = targetPrefixProblems(
      registryOf({
        prod: onboarded('hello', {
          deployRoleArn: 'arn:aws:iam::222222222222:role/crossdeploy/crossdeploy-hello-deploy-us-east-1',
        }),
      }),
    );
    expect(problems[0]).toMatch(/deployRoleArn: .*us-east-1.*eu-west-1/);
  });

  it('leaves alone deploy roles that are not named by target-account/template.yaml', () => {
    expect(targetPrefixProblems(registryOf({ prod: environment('222222222222') }))).toEqual([]);
  });
});

describe('jobSpecDigestLines', () => {
  it('names the SHA-256 of each buildspec, as the JobSpecs publisher computes it', () => {
    const build = 'version: 0.2\nphases: {}\n';
    const deploy = 'version: 0.2\nenv:\n  shell: bash\n';
    expect(parseCfnYaml(jobSpecDigestLines(build, deploy).join('\n'))).toEqual({
      BuildSpecSha256: sha256Hex(build),
      DeploySpecSha256: sha256Hex(deploy),
    });
    expect(sha256Hex(build)).toMatch(/^[0-9a-f]{64}$/);
    expect(sha256Hex(build)).not.toBe(sha256Hex(deploy));
  });

  it('refuses an empty buildspec', () => {
    expect(() => jobSpecDigestLines('\n', 'version: 0.2\n')).toThrow(DeriveError);
    expect(() => jobSpecDigestLines('version: 0.2\n', ' ')).toThrow(/deploy\.yml is empty/);
  });
});

describe('waitSecondsLines', () => {
  const template = `Parameters:
  QueuedTimeoutMinutes: { Type: Number, Default: 5, AllowedValues: [5, 10] }
  BuildTimeoutMinutes: { Type: Number, Default: 30, AllowedValues: [30] }
  DeployTimeoutMinutes: { Type: Number, Default: 60, AllowedValues: [30, 60] }
Resources: {}
`;

  it('maps every (queued, job) pair of allowed minutes to (queued + job) * 60 + the margin', () => {
    expect(parseCfnYaml(waitSecondsLines(template).join('\n'))).toEqual({
      WaitSeconds: {
        '5': { '30': 2100 + WAIT_MARGIN_SECONDS, '60': 3900 + WAIT_MARGIN_SECONDS },
        '10': { '30': 2400 + WAIT_MARGIN_SECONDS, '60': 4200 + WAIT_MARGIN_SECONDS },
      },
    });
  });

  it('refuses a timeout parameter without AllowedValues', () => {
    expect(() => waitSecondsLines(template.replace('AllowedValues: [30] ', ''))).toThrow(
      /BuildTimeoutMinutes/,
    );
  });
});

describe('renderTemplate', () => {
  const marked = (name: string, body: string[] = [], indent = '    ') => [
    `${indent}# BEGIN GENERATED: ${name} (npm run registry:derive)`,
    ...body,
    `${indent}# END GENERATED: ${name}`,
  ];
  const templateWith = (bodies: Partial<Record<string, string[]>> = {}) =>
    ['Resources:', ...BLOCK_NAMES.flatMap((name) => marked(name, bodies[name])), ''].join('\n');
  const blocks = Object.fromEntries(BLOCK_NAMES.map((name) => [name, [`- ${name}`]])) as Blocks;

  it('indents each block like its marker and names the blocks that changed', () => {
    const current = templateWith({ 'wait-seconds': ['    - wait-seconds'] });
    const { text, stale } = renderTemplate(current, blocks);
    expect(stale).toEqual(BLOCK_NAMES.filter((name) => name !== 'wait-seconds'));
    expect(text).toBe(templateWith(Object.fromEntries(BLOCK_NAMES.map((name) => [name, [`    - ${name}`]]))));
    expect(renderTemplate(text, blocks).stale).toEqual([]);
  });

  it('keeps the text of a block it was not given', () => {
    const current = templateWith({ 'job-spec-digests': ['    BuildSpec: old'] });
    const { text, stale } = renderTemplate(current, { 'wait-seconds': ['- wait-seconds'] });
    expect(stale).toEqual(['wait-seconds']);
    expect(text).toContain('    BuildSpec: old');
  });

  it('refuses a template with a block missing, duplicated, unknown or unterminated', () => {
    const lines = templateWith().split('\n');
    expect(() => renderTemplate(lines.filter((l) => !l.includes('wait-seconds')).join('\n'), blocks)).toThrow(
      /exactly one generated block wait-seconds/,
    );
    expect(() => renderTemplate(`${templateWith()}${marked('wait-seconds').join('\n')}\n`, blocks)).toThrow(
      /found 2/,
    );
    expect(() => renderTemplate(`${templateWith()}${marked('surprise').join('\n')}\n`, blocks)).toThrow(
      /surprise/,
    );
    expect(() =>
      renderTemplate(lines.filter((l) => l !== '    # END GENERATED: wait-seconds').join('\n'), blocks),
    ).toThrow(DeriveError);
  });
});
