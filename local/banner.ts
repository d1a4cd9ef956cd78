import { dirname, relative, resolve } from 'node:path';
import type { Registry } from '#shared/registry.ts';
import { localRunnerOf } from './targets.ts';

export interface BannerFacts {
  url: string;
  registryPath: string;
  registry: Registry;
  dataDir: string;
  store: string;
  tokenRequired: boolean;
  credentials: { available: boolean; detail: string } | undefined;
  recovery: { stoppedJobs: number; reconciled: number; pending: number };
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
    `registry   ${show(facts.registryPath)}`,
  ];
  const first: string[] = [];
  for (const [name, app] of Object.entries(facts.registry.applications)) {
    const source = app.source.localPath
      ? `source ${show(resolve(dirname(facts.registryPath), app.source.localPath))}`
      : 'no source.localPath (cannot build locally)';
    lines.push(`  ${name}  (${source}, default ref ${app.defaultRef})`);
    const width = Math.max(...Object.keys(app.environments).map((e) => e.length));
    for (const [envName, env] of Object.entries(app.environments)) {
      const runner = localRunnerOf(env.runner);
      runners.add(runner);
      first.push(`${name} ${envName}`);
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
  if (first[0]) {
    lines.push('', `try        npx crossdeploy deploy ${first[0]} --wait`);
  }
  lines.push('');
  return lines.join('\n');
}
