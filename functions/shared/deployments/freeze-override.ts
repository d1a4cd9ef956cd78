import type { Clock, DeploymentStore } from '../ports.ts';
import type { Deployment } from '../types.ts';
import { recordEvent } from './record.ts';

/**
 * An approver's freeze override. Validate Request keeps it whenever an approver asks for one, window or not,
 * so a window that opens while the request queues or builds is overridden at lock time as well.
 */
export const hasFreezeOverride = (deployment: Deployment): boolean =>
  deployment.freezeOverride === true || deployment.freezeOverrideRequested === true;

/**
 * Audits an override where it is used: once per window, whether at request time or at lock time. A step
 * that runs again writes nothing new; a second window (one opened by lock time) gets its own event.
 */
export async function auditFreezeOverride(
  store: DeploymentStore,
  clock: Clock,
  deployment: Deployment,
  freeze: { name: string; endsAt: string },
  check: 'request' | 'lock',
): Promise<void> {
  const earlier = (await store.listEvents(deployment.deploymentId)).filter(
    (event) => event.type === 'FREEZE_OVERRIDDEN',
  );
  if (earlier.some((event) => event.detail.window === freeze.name && event.detail.endsAt === freeze.endsAt)) {
    return;
  }
  await recordEvent(
    store,
    clock,
    deployment.deploymentId,
    'FREEZE_OVERRIDDEN',
    { window: freeze.name, endsAt: freeze.endsAt, by: deployment.requester, check },
    earlier.length === 0 ? undefined : earlier.length + 1,
  );
}
