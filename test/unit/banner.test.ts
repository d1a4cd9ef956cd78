import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { type BannerFacts, banner } from '#local/banner.ts';
import { SAMPLE_REGISTRY } from '#local/config.ts';
import { parseRegistry } from '#shared/registry/registry.ts';

/** The start-up banner, from the sample registry `npm start` uses and from a registry with a real runner. */

const sample = parseRegistry(parse(readFileSync(SAMPLE_REGISTRY, 'utf8')), SAMPLE_REGISTRY);

const environment = (account: string, extra: Record<string, unknown> = {}) => ({
  accountId: account,
  region: 'eu-west-1',
  deployRoleArn: `arn:aws:iam::${account}:role/crossdeploy/crossdeploy-deploy`,
  executionRoleArn: `arn:aws:iam::${account}:role/crossdeploy/crossdeploy-cfn-exec`,
  stackName: `demo-${account}`,
  artifactsBucket: `crossdeploy-artifacts-${account}-eu-west-1`,
  allowedRequesters: { local: ['*'] },
  ...extra,
});
const mixed = parseRegistry({
  applications: {
    demo: {
      source: { type: 'GITHUB', location: 'https://github.com/example-org/demo.git', localPath: 'app' },
      templatePath: 'template.yaml',
      defaultRef: 'main',
      environments: {
        prod: environment('222222222222', { runner: 'local', promoteFrom: ['dev'], allowedRefs: [] }),
        dev: environment('111111111111', { runner: 'local' }),
      },
    },
  },
});

function facts(overrides: Partial<BannerFacts> = {}): BannerFacts {
  return {
    url: 'http://127.0.0.1:3000',
    registryPath: SAMPLE_REGISTRY,
    registry: sample,
    dataDir: '/srv/crossdeploy/.crossdeploy',
    store: 'embedded dynalite in /srv/crossdeploy/.crossdeploy/db',
    tokenRequired: false,
    credentials: undefined,
    recovery: { stoppedJobs: 0, reconciled: 0, pending: 0 },
    cwd: '/nowhere',
    ...overrides,
  };
}

const tryLine = (text: string) => text.split('\n').filter((line) => line.startsWith('try'));

describe('the start-up banner', () => {
  it('shows the URL, the registry with its applications and environments, and the data directory', () => {
    const text = banner(facts());
    expect(text).toContain('crossdeploy local mode: listening on http://127.0.0.1:3000\n');
    expect(text).toContain(`registry   ${SAMPLE_REGISTRY}`);
    expect(text).toMatch(/^ {2}hello-world {2}\(source \S+examples\/hello-world, default ref main\)$/m);
    expect(text).toMatch(
      /^ {4}staging +account 111111111111 {2}eu-west-1 {2}stack hello-world-staging {2}runner: simulate {2}mode: \w+$/m,
    );
    expect(text).toMatch(
      /^ {4}prod +account 222222222222 {2}eu-west-1 {2}stack hello-world-prod {2}runner: simulate/m,
    );
    expect(text).toContain('data       /srv/crossdeploy/.crossdeploy  (history, logs');
    expect(text).toContain('store      embedded dynalite in /srv/crossdeploy/.crossdeploy/db');
  });

  it('says what is real and what is simulated for simulate runners', () => {
    const text = banner(facts());
    expect(text).toContain('real       the API, validation, lock, settle and reconcile cores');
    expect(text).toContain('workflow   aws-local-stepfunctions running statemachine/deploy.asl.json');
    expect(text).toContain('jobs       runner simulate: the same buildspecs, with stand-ins');
    expect(text).toContain('STS        simulated for runner simulate');
    expect(text).not.toContain('runner local');
  });

  it('says STS is real for local runners, and whether credentials were found', () => {
    const withCreds = banner(
      facts({ registry: mixed, credentials: { available: true, detail: 'profile default' } }),
    );
    expect(withCreds).toContain('jobs       runner local: buildspecs/build.yml and deploy.yml run by bash');
    expect(withCreds).toContain('STS        real for runner local (your credentials: profile default)');
    expect(withCreds).not.toContain('simulated');
    const without = banner(
      facts({ registry: mixed, credentials: { available: false, detail: 'no profile, no keys' } }),
    );
    expect(without).toContain(
      'STS        real for runner local, but no AWS credentials were found (no profile, no keys): those deployments will fail at Assume Target Role',
    );
  });

  it('suggests the plain CLI command on the CLI’s default URL, for an environment that takes a deploy', () => {
    expect(tryLine(banner(facts()))).toEqual([
      'try        npx crossdeploy deploy hello-world staging --wait',
    ]);
    // prod comes first but takes no refs (promotions only): the hint deploys dev.
    expect(tryLine(banner(facts({ registry: mixed })))).toEqual([
      'try        npx crossdeploy deploy demo dev --wait',
    ]);
    expect(banner(facts())).not.toContain('CROSSDEPLOY_URL');
  });

  it('adds --url and CROSSDEPLOY_URL when the server listens on another port', () => {
    const text = banner(facts({ url: 'http://127.0.0.1:4321' }));
    expect(tryLine(text)).toEqual([
      'try        npx crossdeploy deploy hello-world staging --wait --url http://127.0.0.1:4321',
    ]);
    expect(text).toContain('(or `export CROSSDEPLOY_URL=http://127.0.0.1:4321` once and drop --url)');
  });

  it('reaches a wildcard bind through loopback and says the token is needed', () => {
    const text = banner(facts({ url: 'http://0.0.0.0:3000', tokenRequired: true }));
    expect(text).toContain(
      'listening on http://0.0.0.0:3000 (Authorization: Bearer <CROSSDEPLOY_API_TOKEN> required)',
    );
    // 127.0.0.1:3000 is the CLI's default: no --url needed.
    expect(tryLine(text)).toEqual(['try        npx crossdeploy deploy hello-world staging --wait']);
    expect(text).toContain(
      'with CROSSDEPLOY_API_TOKEN set to the same token in that shell (or --token <token>)',
    );

    const other = banner(facts({ url: 'http://[::]:8080', tokenRequired: true }));
    expect(tryLine(other)[0]).toMatch(/--url http:\/\/127\.0\.0\.1:8080$/);
    const address = banner(facts({ url: 'http://10.1.2.3:3000', tokenRequired: true }));
    expect(tryLine(address)[0]).toMatch(/--url http:\/\/10\.1\.2\.3:3000$/);
  });

  it('reports what start-up recovery did, and nothing when there was nothing to recover', () => {
    expect(banner(facts())).not.toContain('recovered');
    expect(banner(facts({ recovery: { stoppedJobs: 1, reconciled: 2, pending: 1 } }))).toContain(
      'recovered  2 deployment(s) in flight marked FAILED (ORCHESTRATOR_RESTARTED), 1 leftover job(s) stopped, 1 still settling in the background',
    );
  });

  it('counts the local deployments recovery left to the servers that own them', () => {
    expect(banner(facts({ recovery: { stoppedJobs: 0, reconciled: 0, pending: 0, left: 2 } }))).toContain(
      "left       2 local deployment(s) in flight that are not this server's to settle",
    );
    expect(banner(facts())).not.toContain('left  ');
  });

  it('names the Slack port as the one to tunnel, and has no Slack line without it', () => {
    const text = banner(facts({ slackUrl: 'http://127.0.0.1:3001/slack/commands' }));
    expect(text).toContain(
      'slack      http://127.0.0.1:3001/slack/commands  (this port serves the Slack route only: point the tunnel here, never at the API port)',
    );
    expect(banner(facts())).not.toContain('slack      ');
  });
});
