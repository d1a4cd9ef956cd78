import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { loadRegistryFile } from '#shared/registry/file.ts';
import { deployParameters, describeRegistry, parseRegistry } from '#shared/registry/registry.ts';

const fixture = () => parse(readFileSync(new URL('../fixtures/registry.yaml', import.meta.url), 'utf8'));
// biome-ignore lint/suspicious/noExplicitAny: the tests mutate parsed YAML freely
const staging = (raw: any) => raw.applications['hello-world'].environments.staging;

describe('targets registry', () => {
  it('loads the production registry and the test registry', () => {
    expect(Object.keys(loadRegistryFile('registry/targets.yaml').applications)).toContain('hello-world');
    expect(parseRegistry(fixture()).applications['hello-world']?.environments.staging?.mode).toBe('queued');
  });

  it("refuses a deploy role in another account than the environment's (the seed article's role_arn mistake)", () => {
    const raw = fixture();
    staging(raw).deployRoleArn = 'arn:aws:iam::123456789012:role/crossdeploy/crossdeploy-deploy';
    expect(() => parseRegistry(raw)).toThrow(
      /applications\.hello-world\.environments\.staging\.deployRoleArn: the role is in account 123456789012, but the environment's accountId is 111111111111/,
    );
  });

  it('refuses an execution role in another account', () => {
    const raw = fixture();
    staging(raw).executionRoleArn = 'arn:aws:iam::222222222222:role/x';
    expect(() => parseRegistry(raw)).toThrow(/staging\.executionRoleArn/);
  });

  it('requires the CloudFormation execution role', () => {
    const raw = fixture();
    delete staging(raw).executionRoleArn;
    expect(() => parseRegistry(raw)).toThrow(/staging\.executionRoleArn/);
  });

  it.each([
    ['stackName', '1starts-with-digit'],
    ['stackName', 'has_underscore'],
    ['region', 'Europe'],
    ['accountId', '12345'],
    ['capabilities', ['CAPABILITY_EVERYTHING']],
  ])('names the offending field %s = %j', (field, value) => {
    const raw = fixture();
    staging(raw)[field] = value;
    expect(() => parseRegistry(raw)).toThrow(new RegExp(`staging\\.${field}`));
  });

  it('refuses two environments that deploy the same account, region and stack', () => {
    const raw = fixture();
    raw.applications['hello-world'].environments.copy = { ...staging(raw) };
    expect(() => parseRegistry(raw)).toThrow(/deploys the same account, region and stack/);
  });

  it('refuses an application named like a chat subcommand', () => {
    const raw = fixture();
    raw.applications.status = raw.applications['hello-world'];
    expect(() => parseRegistry(raw)).toThrow(/applications\.status: the name is a chat subcommand/);
  });

  it('refuses unknown fields, so a typo never silently drops a setting', () => {
    const raw = fixture();
    staging(raw).externalID = 'typo';
    expect(() => parseRegistry(raw)).toThrow(/externalID/);
  });

  it.each([
    ['an ARN short of its resource segment', 'arn:aws:iam::*'],
    ['a wildcard service', 'arn:aws:*::123456789012:role/x'],
    ['a role name with a space', 'release managers'],
    ['a role name with a slash (a path belongs in an ARN rule)', 'release-managers/*'],
    ['an empty rule', ''],
  ])('refuses an IAM rule that IAM would not read as meant: %s', (_what, rule) => {
    const raw = fixture();
    staging(raw).allowedRequesters.iam = [rule];
    expect(() => parseRegistry(raw)).toThrow(
      /staging\.allowedRequesters\.iam\.0: must be a role name pattern/,
    );
  });

  it('takes readers with the same rules, and leaves them unset unless listed', () => {
    const raw = fixture();
    staging(raw).readers = { iam: ['arn:aws:iam::123456789012:role/auditors/*'], local: ['auditor'] };
    const env = parseRegistry(raw).applications['hello-world']?.environments;
    expect(env?.staging?.readers).toEqual({
      iam: ['arn:aws:iam::123456789012:role/auditors/*'],
      slack: [],
      schedule: [],
      local: ['auditor'],
    });
    expect(env?.prod?.readers).toBeUndefined();
    staging(raw).readers = { iam: ['arn:aws:iam::*'] };
    expect(() => parseRegistry(raw)).toThrow(/staging\.readers\.iam\.0/);
  });

  it('describes applications without role ARNs or external ids', () => {
    const text = JSON.stringify(describeRegistry(parseRegistry(fixture())));
    expect(text).not.toContain('arn:aws:iam');
    expect(text).not.toContain('prod-external-id');
    expect(text).toContain('111111111111');
  });

  it('hashes the deploy parameters independently of key order', () => {
    const a = parseRegistry(fixture());
    const raw = fixture();
    staging(raw).parameterOverrides = { B: '2', A: '1' };
    const b = parseRegistry(raw);
    const raw2 = fixture();
    staging(raw2).parameterOverrides = { A: '1', B: '2' };
    const c = parseRegistry(raw2);
    const hash = (r: typeof a) => deployParameters(r.applications['hello-world']!.environments.staging!).hash;
    expect(hash(b)).toBe(hash(c));
    expect(hash(a)).not.toBe(hash(b));
    expect(stringify(a)).toBeTruthy();
  });
});

describe('template policy exceptions in the registry', () => {
  it('accepts exact allowedTrustPrincipals and allowedManagedPolicies per environment, and leaves them unset by default', () => {
    const raw = fixture();
    staging(raw).allowedTrustPrincipals = ['arn:aws:iam::333333333333:role/auditor'];
    staging(raw).allowedManagedPolicies = ['PowerUserAccess', 'arn:aws:iam::aws:policy/IAMFullAccess'];
    const env = parseRegistry(raw).applications['hello-world']?.environments.staging;
    expect(env?.allowedTrustPrincipals).toEqual(['arn:aws:iam::333333333333:role/auditor']);
    expect(env?.allowedManagedPolicies).toEqual(['PowerUserAccess', 'arn:aws:iam::aws:policy/IAMFullAccess']);
    expect(
      parseRegistry(fixture()).applications['hello-world']?.environments.staging?.allowedTrustPrincipals,
    ).toBeUndefined();
  });

  it('refuses wildcards, which would turn a named exception into a class of them', () => {
    for (const [field, value] of [
      ['allowedTrustPrincipals', '*'],
      ['allowedTrustPrincipals', 'arn:aws:iam::*:root'],
      ['allowedManagedPolicies', 'arn:aws:iam::aws:policy/*'],
    ] as const) {
      const raw = fixture();
      staging(raw)[field] = [value];
      expect(() => parseRegistry(raw), `${field}: ${value}`).toThrow(/no wildcards/);
    }
  });
});
