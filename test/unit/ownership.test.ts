import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import type { InstanceLease } from '#shared/aws/store.ts';
import { ConfigError } from '#shared/errors.ts';
import { InstanceOwnership, type OwnershipStore } from '../../local/ownership.ts';

/** Leases in a map: enough to show whom start-up lets take an instance id. */
function leaseStore(existing?: InstanceLease): OwnershipStore & { leases: Map<string, InstanceLease> } {
  const leases = new Map<string, InstanceLease>(existing ? [[existing.instanceId, existing]] : []);
  return {
    leases,
    claimDeploymentOwner: async (_id, instanceId) => ({ claimed: true, owner: instanceId }),
    getDeploymentOwner: async () => undefined,
    putInstanceLease: async (lease) => void leases.set(lease.instanceId, lease),
    getInstanceLease: async (id) => leases.get(id),
  };
}

const ID = '3f1c2a4e-1111-4222-8333-944455556666';
const NOW = new Date('2026-12-04T10:00:00.000Z');
const clock = { now: () => NOW };
const live = (over: Partial<InstanceLease>): InstanceLease => ({
  instanceId: ID,
  startedAt: '2026-12-04T09:00:00.000Z',
  hostname: hostname(),
  pid: 1,
  dataDir: '/data/a',
  renewedAt: '2026-12-04T09:59:50.000Z',
  leaseExpiresAt: '2026-12-04T10:00:50.000Z',
  ...over,
});

describe('taking an instance id at start-up', () => {
  it('refuses an id whose live lease belongs to another host (a copied data directory), naming it', async () => {
    const store = leaseStore(live({ hostname: 'other-host' }));
    const ownership = new InstanceOwnership({ store, instanceId: ID, dataDir: '/data/a', clock });
    await expect(ownership.start(60_000)).rejects.toThrow(ConfigError);
    await expect(ownership.start(60_000)).rejects.toThrow(/other-host/);
    expect(store.leases.get(ID)?.hostname).toBe('other-host');
  });

  it('refuses an id whose live lease belongs to another data directory on this host', async () => {
    const store = leaseStore(live({ dataDir: '/data/copy' }));
    const ownership = new InstanceOwnership({ store, instanceId: ID, dataDir: '/data/a', clock });
    await expect(ownership.start(60_000)).rejects.toThrow(/\/data\/copy/);
  });

  it('takes over its own live lease after a crash on this host (the data-directory claim proved it gone)', async () => {
    const store = leaseStore(live({ pid: 999_999 }));
    const ownership = new InstanceOwnership({ store, instanceId: ID, dataDir: '/data/a', clock });
    await ownership.start(60_000);
    await ownership.stop();
    expect(store.leases.get(ID)).toMatchObject({ pid: process.pid, stoppedAt: NOW.toISOString() });
  });

  it('takes an id whose lease from another host has run out', async () => {
    const store = leaseStore(live({ hostname: 'other-host', leaseExpiresAt: '2026-12-04T09:59:00.000Z' }));
    const ownership = new InstanceOwnership({ store, instanceId: ID, dataDir: '/data/a', clock });
    await ownership.start(60_000);
    await ownership.stop();
    expect(store.leases.get(ID)?.hostname).toBe(hostname());
  });
});
