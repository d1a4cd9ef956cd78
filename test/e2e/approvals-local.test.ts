import { describe, expect, it } from 'vitest';
import {
  type CliRun,
  call,
  deployment,
  eventTypes,
  runCli,
  useLocalServer,
  waitFor,
  waitForTerminal,
} from './support/local-server.ts';

/**
 * Reviewed changes end to end in local mode: the real CLI (bin/crossdeploy.mjs) and HTTP API against the
 * real local server (`node local/main.ts`, the real ASL), environments with `runner: simulate`, whose change
 * sets the simulate runner derives from the built template (docs/approvals.md).
 */

const local = useLocalServer();

type Run = CliRun;

function cli(args: string[]): Promise<Run> {
  return runCli(args, { CROSSDEPLOY_URL: local.server.url });
}

/** Requests a deployment with the CLI and waits (through the API) until it waits for a decision. */
async function deployAndAwaitApproval(environment: string): Promise<string> {
  const run = await cli(['deploy', 'demo', environment, '--json']);
  expect(run.code, run.stderr).toBe(0);
  const id = String((JSON.parse(run.stdout) as { deploymentId: string }).deploymentId);
  try {
    await waitFor(`deployment ${id} to await approval`, async () => {
      const d = await deployment(local.server.url, id);
      return d.phase === 'AWAITING_APPROVAL' || (d.status !== 'RUNNING' && d.status !== 'QUEUED')
        ? d
        : undefined;
    });
  } catch (error) {
    throw new Error(`${(error as Error).message}: ${JSON.stringify(await deployment(local.server.url, id))}`);
  }
  const d = await deployment(local.server.url, id);
  expect(d.phase, JSON.stringify({ d, events: await eventTypes(local.server.url, id) })).toBe(
    'AWAITING_APPROVAL',
  );
  return id;
}

describe('approvals in local mode (CLI + API round trip)', () => {
  it('shows the change set, holds the lock, and runs it once approved with `crossdeploy approve`', async () => {
    const id = await deployAndAwaitApproval('reviewed');
    const waiting = await deployment(local.server.url, id);
    expect(waiting).toMatchObject({
      status: 'RUNNING',
      approval: { mode: 'required', state: 'PENDING' },
      changeSetSummary: { added: [{ action: 'Add', logicalId: 'Fn' }], removed: [] },
    });
    // The IAM the built template brings: the role SAM generates for Fn, trusted by Lambda, with its boundary.
    const summary = waiting.changeSetSummary as { iamInventory: unknown; broadening: string[] };
    expect(summary.iamInventory).toMatchObject({
      roles: 1,
      entries: [{ id: 'FnRole', kind: 'role', principals: ['service lambda.amazonaws.com'] }],
    });
    expect(summary.broadening).toContain('IAM: adds IAM role FnRole');
    const shown = await cli(['status', id]);
    expect(shown.stdout).toContain('role FnRole');
    expect(shown.stdout).toContain('trusts: service lambda.amazonaws.com');
    // A second request for the environment queues behind the pending approval rather than overtaking it.
    const queued = await cli(['deploy', 'demo', 'reviewed', '--json']);
    expect(queued.code).toBe(0);
    const queuedId = String((JSON.parse(queued.stdout) as { deploymentId: string }).deploymentId);

    const approved = await cli(['approve', id, '--reason', 'looked at the diff']);
    expect(approved.stderr).toBe('');
    expect(approved.code).toBe(0);
    expect(approved.stdout).toContain(`deployment ${id} approved`);

    const done = await waitForTerminal(local.server.url, id);
    expect(done).toMatchObject({
      status: 'SUCCEEDED',
      approval: { state: 'APPROVED', reason: 'looked at the diff', decidedBy: { type: 'local' } },
    });
    const types = await eventTypes(local.server.url, id);
    expect(types.indexOf('APPROVED')).toBeGreaterThan(types.indexOf('APPROVAL_REQUESTED'));
    expect(types.indexOf('CHANGE_SET_EXECUTED')).toBeGreaterThan(types.indexOf('APPROVED'));

    // The queued one then reviews its own change set: the template was executed, so nothing differs.
    await waitFor(`deployment ${queuedId} to await approval`, async () => {
      const d = await deployment(local.server.url, queuedId);
      return d.phase === 'AWAITING_APPROVAL' ? d : undefined;
    });
    expect((await deployment(local.server.url, queuedId)).changeSetSummary).toMatchObject({
      added: [],
      modified: [],
      removed: [],
      // The same role as the stack now has: shown, and nothing added or widened.
      broadening: [],
      iamInventory: { roles: 1 },
    });
    const status = await cli(['status', queuedId]);
    expect(status.stdout).toMatch(
      new RegExp(`awaiting approval until \\S+: crossdeploy approve ${queuedId}`),
    );
    const rejected = await cli(['reject', queuedId, '--reason', 'nothing to ship']);
    expect(rejected.code).toBe(0);
    expect(await waitForTerminal(local.server.url, queuedId)).toMatchObject({
      status: 'REJECTED',
      errorCode: 'APPROVAL_REJECTED',
    });
  }, 180_000);

  it('refuses self-approval with a problem (exit 1) and an audit event; the requester may still reject', async () => {
    const id = await deployAndAwaitApproval('reviewed-strict');
    // A pending approval holds the environment: a `reject`-mode environment refuses the next request as busy.
    const busy = await cli(['deploy', 'demo', 'reviewed-strict']);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toContain(id);

    const refused = await cli(['approve', id]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/may not decide on it/);

    const raw = await call(local.server.url, 'POST', `/deployments/${id}/approval`, {
      body: { decision: 'approve' },
    });
    expect(raw.status).toBe(403);
    expect(raw.contentType).toContain('application/problem+json');
    expect(raw.body).toMatchObject({ code: 'SELF_APPROVAL', status: 403 });

    const bad = await call(local.server.url, 'POST', `/deployments/${id}/approval`, {
      body: { decision: 'yes' },
    });
    expect(bad.status).toBe(400);
    expect(bad.contentType).toContain('application/problem+json');
    expect(bad.body).toMatchObject({ code: 'INVALID_FIELD', field: 'decision' });

    expect((await eventTypes(local.server.url, id)).filter((t) => t === 'APPROVAL_REFUSED')).toHaveLength(2);
    expect((await deployment(local.server.url, id)).phase).toBe('AWAITING_APPROVAL');

    expect((await cli(['reject', id])).code).toBe(0);
    expect(await waitForTerminal(local.server.url, id)).toMatchObject({ status: 'REJECTED' });

    // After the end: refused as 409, audited, exit 1.
    const late = await cli(['approve', id]);
    expect(late.code).toBe(1);
    expect(late.stderr).toMatch(/not awaiting approval/);
    expect((await eventTypes(local.server.url, id)).filter((t) => t === 'APPROVAL_REFUSED')).toHaveLength(3);
  }, 180_000);
});
