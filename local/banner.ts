import { dirname, relative, resolve } from 'node:path';
import type { Registry } from '#shared/registry/registry.ts';
import { defaultUrl } from './cli/args.ts';
import { localRunnerOf } from './targets.ts';

export interface BannerFacts {
  url: string;
  registryPath: string;
  registry: Registry;
  dataDir: string;
  store: string;
  tokenRequired: boolean;
  /** The Slack listener's route, when CROSSDEPLOY_SLACK_PORT is set. */
  slackUrl?: string;
  credentials: { available: boolean; detail: string } | undefined;
  recovery: { stoppedJobs: number; reconciled: number; pending: number; left?: number };
  cwd?: string;
}

/** What the newcomer sees first: where it listens, what it deploys, and what is real and what is simulated. */
export function banner(facts: BannerFacts): string {
  const show = (path: string) => {
    const rel = relative(facts.cwd ?? process.cwd(), path);
    return rel && !rel.startsWith('..') ? rel : path;
  };
  const runners = new Set<string>();
  const lines = [
    '',
    `crossdeploy local mode: listening on ${facts.url}${facts.tokenRequired ? ' (Authorization: Bearer <CROSSDEPLOY_API_TOKEN> required)' : ''}`,
    '',
  ];
  if (facts.slackUrl) {
    lines.push(
      `slack      ${facts.slackUrl}  (this port serves the Slack route only: point the tunnel here, never at the API port)`,
      '',
    );
  }
  lines.push(`registry   ${show(facts.registryPath)}`);
  // What the hint deploys: preferably an environment that takes a plain deploy and needs no AWS.
  const candidates: { target: string; simulated: boolean; takesRefs: boolean }[] = [];
  for (const [name, app] of Object.entries(facts.registry.applications)) {
    const source = app.source.localPath
      ? `source ${show(resolve(dirname(facts.registryPath), app.source.localPath))}`
      : 'no source.localPath (cannot build locally)';
    lines.push(`  ${name}  (${source}, default ref ${app.defaultRef})`);
    const width = Math.max(...Object.keys(app.environments).map((e) => e.length));
    for (const [envName, env] of Object.entries(app.environments)) {
      const runner = localRunnerOf(env.runner);
      runners.add(runner);
      candidates.push({
        target: `${name} ${envName}`,
        simulated: runner === 'simulate',
        takesRefs: env.allowedRefs.length > 0,
      });
      lines.push(
        `    ${envName.padEnd(width)}  account ${env.accountId}  ${env.region}  stack ${env.stackName}  runner: ${runner}  mode: ${env.mode}`,
      );
    }
  }
  const creds = facts.credentials;
  lines.push(
    `data       ${show(facts.dataDir)}  (history, logs, workspaces and build outputs survive restarts)`,
    '',
    'real       the API, validation, lock, settle and reconcile cores and the Lambda handlers, as deployed',
    `store      ${facts.store}`,
    'workflow   aws-local-stepfunctions running statemachine/deploy.asl.json',
  );
  if (runners.has('local')) {
    lines.push(
      'jobs       runner local: buildspecs/build.yml and deploy.yml run by bash, with sam and aws from PATH',
    );
  }
  if (runners.has('simulate')) {
    lines.push(
      `jobs       runner simulate: the same buildspecs, with stand-ins for sam and aws that record the commands (nothing is deployed)`,
      "STS        simulated for runner simulate (the environment's own account; no AWS call)",
    );
  }
  if (runners.has('local')) {
    lines.push(
      creds?.available
        ? `STS        real for runner local (your credentials: ${creds.detail})`
        : `STS        real for runner local, but no AWS credentials were found (${creds?.detail ?? 'not checked'}): those deployments will fail at Assume Target Role`,
    );
  }
  const { stoppedJobs, reconciled, pending } = facts.recovery;
  if (stoppedJobs + reconciled + pending > 0) {
    lines.push(
      '',
      `recovered  ${reconciled} deployment(s) in flight marked FAILED (ORCHESTRATOR_RESTARTED), ${stoppedJobs} leftover job(s) stopped${pending ? `, ${pending} still settling in the background` : ''}`,
    );
  }
  if (facts.recovery.left) {
    lines.push(
      `left       ${facts.recovery.left} local deployment(s) in flight that are not this server's to settle (another server runs them, or their server's job cannot be seen from here): see the log`,
    );
  }
  const hint =
    candidates.find((c) => c.simulated && c.takesRefs) ??
    candidates.find((c) => c.takesRefs) ??
    candidates[0];
  if (hint) lines.push('', ...tryLines(hint.target, facts.url, facts.tokenRequired));
  lines.push('');
  return lines.join('\n');
}

/**
 * The CLI command that reaches this server from this machine. The CLI defaults to its own default URL
 * (local/cli/args.ts), so any other port or address is spelled out, with CROSSDEPLOY_URL as the way to
 * set it once; a wildcard bind is reached through loopback.
 */
function tryLines(target: string, url: string, tokenRequired: boolean): string[] {
  const reach = new URL(url);
  if (reach.hostname === '0.0.0.0' || reach.hostname === '[::]') reach.hostname = '127.0.0.1';
  const origin = reach.origin;
  const custom = origin !== new URL(defaultUrl({})).origin;
  const lines = [`try        npx crossdeploy deploy ${target} --wait${custom ? ` --url ${origin}` : ''}`];
  if (custom) lines.push(`           (or \`export CROSSDEPLOY_URL=${origin}\` once and drop --url)`);
  if (tokenRequired) {
    lines.push(
      '           with CROSSDEPLOY_API_TOKEN set to the same token in that shell (or --token <token>)',
    );
  }
  return lines;
}
