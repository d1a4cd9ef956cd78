/** Usage text, kept next to the parser's command list so the two are read together. */

const REQUEST_OPTIONS_HELP = `  --reason T          why, recorded in the history
  --dry-run           create and describe a change set without executing it
  --override-freeze   deploy inside a freeze window (honoured for the environment's approvers only)
  --wait              follow the deployment until it ends`;

export const COMMAND_HELP = {
  deploy: `Usage: crossdeploy deploy <application> <environment> [--ref R] [--reason T] [--dry-run]
                         [--override-freeze] [--wait]

Requests a deployment. Without --wait, prints its id and status URL and exits 0.
With --wait, shows each step as it happens and exits 0 if it succeeded, 1 if not.

Options:
  --ref R             commit SHA, branch or tag (default: the application's default ref)
${REQUEST_OPTIONS_HELP}`,
  promote: `Usage: crossdeploy promote <application> <from> <to> [--reason T] [--dry-run] [--override-freeze]
                          [--wait]

Deploys to <to> exactly the build output of <from>'s last successful deployment (the same artifact,
hence the same commit; nothing is rebuilt). The registry's promoteFrom says which environments <to>
takes promotions from. Output and exit codes as for deploy.

Options:
${REQUEST_OPTIONS_HELP}`,
  rollback: `Usage: crossdeploy rollback <application> <environment> <release> [--reason T] [--dry-run]
                           [--override-freeze] [--wait]

Redeploys release <release> of the environment (its build output and registry parameters, without a
build); \`crossdeploy history\` shows the release numbers. Output and exit codes as for deploy.

Options:
${REQUEST_OPTIONS_HELP}`,
  status: `Usage: crossdeploy status <deployment-id>

Shows a deployment and its steps. Exits 1 if it failed, was rejected or cancelled.`,
  history: `Usage: crossdeploy history <application> <environment> [--limit N] [--cursor C]

Lists an environment's deployments, newest first.

Options:
  --limit N     how many (1-100, default 20)
  --cursor C    continue from the previous page (printed under the table)`,
  logs: `Usage: crossdeploy logs <deployment-id> [--follow]

Prints the build and deploy jobs' output.

Options:
  --follow      keep printing new lines until the deployment ends`,
  approve: `Usage: crossdeploy approve <deployment-id> [--reason T]

Approves the change set a deployment waits on (environments with approval set in the registry): the
workflow then executes exactly that change set. Refused (exit 1) unless you are one of the environment's
approvers, the deployment is awaiting approval, and (unless the environment allows it) you did not request
it yourself. Every decision and refusal is on the deployment's record.

Options:
  --reason T    why, recorded with the decision`,
  reject: `Usage: crossdeploy reject <deployment-id> [--reason T]

Rejects the change set a deployment waits on: it is deleted, nothing is applied, and the deployment ends
REJECTED (APPROVAL_REJECTED). Same rules as approve.

Options:
  --reason T    why, recorded with the decision`,
  apps: `Usage: crossdeploy apps

Lists the registry's applications and their environments.`,
  metrics: `Usage: crossdeploy metrics <application> <environment> [--from D] [--to D]

Shows the environment's delivery metrics over a window (default: the last 30 days): deployment
frequency, lead time (commit to SUCCEEDED), change failure rate and time to restore (FAILED to the
next SUCCEEDED). Definitions: docs/metrics.md.

Options:
  --from D      start of the window (a date such as 2026-11-01, or a date-time with a zone)
  --to D        end of the window, exclusive (default: now)`,
  console: `Usage: crossdeploy console [--port N]

Serves the read-only web console on http://127.0.0.1:N/console (default 8001) for the API at --url, like
\`kubectl proxy\`: the browser talks to this process only, which calls the API signed with your AWS
credentials (SigV4), so no browser holds AWS keys. Runs until Ctrl-C. Local mode serves the same console
on its own port (npm start, then /console).

Options:
  --port N      loopback port to listen on (0 picks a free one)`,
  doctor: `Usage: crossdeploy doctor <application> <environment> [--drift] [--local [--registry FILE] [--template FILE]]

Checks the environment's cross-account setup in order and says, for each check that fails, the fix and
which account holds it: the registry entry, the caller, AssumeRole exactly as the deploy job does it, the
session's account at the target region's STS endpoint, the execution role, the stack's status, the
artifacts bucket and, with --drift, drift. Exits 1 if a check failed.

By default the API runs it, so the orchestrator's deployer role (the principal deploy roles trust) is tested.

Options:
  --drift           also detect drift (resources changed by hand); needs EnableDriftDetection on the target
  --local           run the same checks here, with your own AWS credentials
  --registry FILE   with --local: the registry (default: $CROSSDEPLOY_REGISTRY, else registry/targets.yaml)
  --template FILE   with --local: also hold this built template (.aws-sam/build/template.yaml) to the deploy
                    job's template policy, with the environment's settings and registry exceptions`,
} as const;

export type CommandName = keyof typeof COMMAND_HELP;

export const GLOBAL_HELP = `crossdeploy — deploy SAM applications across AWS accounts

Usage: crossdeploy <command> [arguments] [options]

Commands:
  deploy <app> <env>    request a deployment (--wait to follow it)
  promote <app> <from> <to>
                        deploy <from>'s last successful build output to <to>
  rollback <app> <env> <release>
                        redeploy release <release> of an environment
  status <id>           show a deployment and its steps
  history <app> <env>   list an environment's deployments and their release numbers
  logs <id>             print the build and deploy output (--follow)
  approve <id>          approve the change set a deployment waits on (--reason)
  reject <id>           reject it: nothing is applied (--reason)
  apps                  list applications and environments
  metrics <app> <env>   delivery metrics (DORA four) over a window (--from, --to)
  console               read-only web console on loopback for a deployed API (signed calls)
  doctor <app> <env>    check an environment's cross-account setup (--local: with your credentials)

Global options:
  --url URL       crossdeploy API (default: $CROSSDEPLOY_URL, else http://127.0.0.1:$PORT, PORT defaults to 3000)
                  A non-local URL is signed with SigV4 using the standard AWS credential chain.
  --token T       bearer token for a local server bound to a non-loopback address
                  (default: $CROSSDEPLOY_API_TOKEN)
  --json          machine-readable output (see docs/cli.md)
  -h, --help      show help (also: crossdeploy <command> --help)
  --version       print crossdeploy's version

Exit codes: 0 success, 1 deployment failed or rejected (or the API refused the request),
2 usage error or crossdeploy unreachable.`;
