import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { expectValidResponse } from '#test/support/openapi.ts';
import { type CliRun, runCli, useLocalServer, waitForTerminal } from './support/local-server.ts';

/**
 * The real CLI (bin/crossdeploy.mjs, as `npx crossdeploy` runs it) against the real local server
 * (`node local/main.ts`): the real handlers and statemachine/deploy.asl.json, `runner: simulate` for `sim`.
 * Its output is piped, so it prints the plain lines CI logs get.
 */

const local = useLocalServer();

type Run = CliRun;

/** `crossdeploy <args>` with the node running the tests (Node 24), talking to the server unless told otherwise. */
function cli(args: string[], env: NodeJS.ProcessEnv = { CROSSDEPLOY_URL: local.server.url }): Promise<Run> {
  return runCli(args, env);
}

/** The deployment id the first line of `deploy --wait` names. */
const idIn = (run: Run) => /— deployment (\S+)/.exec(run.stdout)?.[1] ?? '';

/** Checks a body against openapi.yaml as if `GET <template>` had answered it. */
const expectDocumented = (template: string, body: unknown) =>
  expectValidResponse('GET', template, {
    statusCode: 200,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

describe('the CLI against the real local server', () => {
  let deployed: string;

  it('deploy --wait shows each step in order and exits 0', async () => {
    const run = await cli(['deploy', 'demo', 'sim', '--reason', 'cli e2e', '--wait']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    deployed = idIn(run);
    expect(deployed).toMatch(/^[0-9A-Z]{26}$/);
    const lines = run.stdout.trim().split('\n');
    // `sim` has `runner: simulate`: every view of it says so.
    expect(lines[0]).toBe(`deploying demo/sim [SIMULATED] — deployment ${deployed}`);
    // Each step once, in the order the workflow takes them.
    const steps = [
      /^requested by \S+ \(local\) \((ref \S+, )?SIMULATED\)$/,
      /^validated: account 333333333333, eu-west-1, stack demo-sim$/,
      /^build started$/,
      /^build finished in \d+s, commit [0-9a-f]{7}$/,
      /^lock acquired$/,
      /^role assumed in account 333333333333/,
      /^deploy started$/,
      /^deploy finished in \d+s$/,
      // Freed before the result: whoever reads "succeeded" may deploy again at once.
      /^lock released$/,
      /^succeeded in \d+s, release 1 \(SIMULATED: nothing was deployed\)$/,
    ];
    const at = steps.map((step) => {
      const matching = lines.filter((line) => step.test(line));
      expect(matching, String(step)).toHaveLength(1);
      return lines.findIndex((line) => step.test(line));
    });
    expect(at).toEqual([...at].sort((a, b) => a - b));
    // Piped: plain lines, no colour or cursor movement.
    expect(run.stdout).not.toContain('\u001b');
    expect(run.stdout).not.toContain('\r');
  }, 120_000);

  it('deploy --wait --json prints only the final deployment with its events, as docs/cli.md documents', async () => {
    const run = await cli([
      'deploy',
      'demo',
      'sim',
      '--ref',
      local.fixture.commits.first,
      '--wait',
      '--json',
    ]);
    expect(run.code).toBe(0);
    // stderr is not a terminal: no progress at all.
    expect(run.stderr).toBe('');
    const body = JSON.parse(run.stdout) as Record<string, unknown> & { events: { type: string }[] };
    const { events, ...rest } = body;
    expectDocumented('/deployments/{id}', rest);
    expectDocumented('/deployments/{id}/events', { items: events });
    expect(body).toMatchObject({
      application: 'demo',
      environment: 'sim',
      ref: local.fixture.commits.first,
      resolvedCommit: local.fixture.commits.first,
      status: 'SUCCEEDED',
      targetAccount: '333333333333',
      trigger: 'local',
    });
    expect(events.map((e) => e.type)).toEqual([
      'REQUESTED',
      'VALIDATED',
      'BUILD_STARTED',
      'BUILD_FINISHED',
      'LOCK_ACQUIRED',
      'ROLE_ASSUMED',
      'DEPLOY_STARTED',
      'DEPLOY_FINISHED',
      'LOCK_RELEASED',
      'SUCCEEDED',
    ]);
  }, 120_000);

  it('deploy without --wait prints the accepted deployment; with --json the documented 202 body', async () => {
    const run = await cli(['deploy', 'demo', 'sim', '--dry-run', '--json', '--url', local.server.url], {});
    expect(run.code).toBe(0);
    const body = JSON.parse(run.stdout) as Record<string, unknown>;
    expect(body).toMatchObject({ status: 'QUEUED', application: 'demo', environment: 'sim', dryRun: true });
    expect(Object.keys(body.links as object).sort()).toEqual(['events', 'logs', 'self']);
    // The next tests deploy to sim too, which refuses while this one runs: it must end first.
    await waitForTerminal(local.server.url, String(body.deploymentId));
  }, 60_000);

  it('exits 1 with the reason when the requester is not allowed, and starts nothing', async () => {
    const run = await cli(['deploy', 'demo', 'guarded', '--wait']);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^✗ .+ \(403 FORBIDDEN\): .+/);
    expect(run.stderr).toMatch(/recorded as deployment [0-9A-Z]{26}/);
    const rejected = /recorded as deployment (\S+)/.exec(run.stderr)?.[1] ?? '';
    const status = await cli(['status', rejected]);
    expect(status.code).toBe(1);
    expect(status.stdout).toContain(`deployment ${rejected}  REJECTED`);
  });

  it('exits 1 with the reason for a malformed ref, and for a ref the repository does not have', async () => {
    const malformed = await cli(['deploy', 'demo', 'sim', '--ref=-rf', '--wait']);
    expect(malformed.code).toBe(1);
    expect(malformed.stderr).toMatch(/\(400 \w+\): .*ref/i);
    expect(malformed.stderr).toContain('field: ref');

    const unknown = await cli(['deploy', 'demo', 'sim', '--ref', 'no-such-branch', '--wait']);
    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toMatch(/^build failed after \d+s$/m);
    expect(unknown.stdout).toMatch(/^failed after \d+s: BUILD_FAILED/m);
    expect(unknown.stdout).toContain(`job output: crossdeploy logs ${idIn(unknown)}`);
    const logs = await cli(['logs', idIn(unknown)]);
    expect(logs.stdout).toContain('ref "no-such-branch" does not name a commit');
  }, 120_000);

  it('status shows the deployment and its steps; --json is the documented Deployment', async () => {
    const run = await cli(['status', deployed]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`deployment ${deployed}  SUCCEEDED`);
    expect(run.stdout).toMatch(/^target +demo\/sim$/m);
    expect(run.stdout).toMatch(/^reason +cli e2e$/m);
    expect(run.stdout).toMatch(/^release +1$/m);
    expect(run.stdout).toMatch(/^ {2}succeeded in \d+s, release 1 \(SIMULATED: nothing was deployed\)$/m);

    const json = await cli(['status', deployed, '--json']);
    expect(json.code).toBe(0);
    expect(expectDocumented('/deployments/{id}', JSON.parse(json.stdout))).toMatchObject({
      deploymentId: deployed,
      status: 'SUCCEEDED',
    });
  });

  it('history lists the environment’s deployments, newest first', async () => {
    const run = await cli(['history', 'demo', 'sim', '--limit', '50']);
    expect(run.code).toBe(0);
    const rows = run.stdout.trim().split('\n');
    expect(rows[0]).toMatch(/^ID\s+STATUS\s+RELEASE\s+KIND\s+REF/);
    const ids = rows.slice(1).map((row) => row.split(/\s+/)[0]);
    expect(ids).toContain(deployed);
    expect(ids).toEqual([...ids].sort().reverse());
    expect(rows.find((row) => row.startsWith(deployed))).toMatch(
      /SUCCEEDED SIMULATED\s+1\s+deploy\s+main@[0-9a-f]{7}/,
    );

    const json = await cli(['history', 'demo', 'sim', '--json']);
    const page = expectDocumented('/deployments', JSON.parse(json.stdout)) as {
      items: { deploymentId: string }[];
    };
    expect(page.items.map((d) => d.deploymentId)).toEqual(ids.slice(0, page.items.length));
  });

  it('logs prints the build and deploy jobs’ output; --json one object per line', async () => {
    const run = await cli(['logs', deployed]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/ build +crossdeploy-local: build job \S+ \(runner: simulate\)/);
    expect(run.stdout).toMatch(/ deploy +crossdeploy-local: deploy job \S+ \(runner: simulate\)/);
    expect(run.stdout.indexOf(' build ')).toBeLessThan(run.stdout.indexOf(' deploy '));

    const json = await cli(['logs', deployed, '--follow', '--json']);
    expect(json.code).toBe(0);
    const lines = json.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { job: string; at: string; message: string });
    expect(lines.length).toBe(run.stdout.trim().split('\n').length);
    expect(new Set(lines.map((line) => line.job))).toEqual(new Set(['build', 'deploy']));
  });

  it('apps lists the registry', async () => {
    const run = await cli(['apps']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^demo\s+main\s+sim\s+333333333333\s+eu-west-1\s+demo-sim\s+reject$/m);
  });

  it('exits 2 and says how to start crossdeploy when the URL is unreachable', async () => {
    // A port that was just free: nothing listens there.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', () => resolve()));
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    const run = await cli(['status', '01JNZZZZZZZZZZZZZZZZZZZZZZ', '--url', `http://127.0.0.1:${port}`], {});
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(`cannot reach crossdeploy at http://127.0.0.1:${port} (ECONNREFUSED)`);
    expect(run.stderr).toContain('is `npm start` running?');
  });

  it('the banner’s hint is a command that reaches this server', async () => {
    const hint = /^try {8}npx crossdeploy (.+)$/m.exec(local.server.output())?.[1];
    expect(hint).toBe(`deploy demo sim --wait --url ${local.server.url}`);
    const run = await cli((hint ?? '').split(' '), {});
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^succeeded in \d+s, release \d+ \(SIMULATED: nothing was deployed\)$/m);
  }, 120_000);
});
