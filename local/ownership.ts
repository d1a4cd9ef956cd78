import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { InstanceLease } from '#shared/aws/store.ts';
import { ConfigError } from '#shared/errors.ts';
import { logger } from '#shared/logger.ts';
import type { Clock, DeploymentStore } from '#shared/ports.ts';
import { type Deployment, isTerminal } from '#shared/types.ts';

/**
 * Which local server owns a deployment, so that one server's start-up recovery never settles what another
 * server on the same table is still running. A server instance is its data directory (one server per data
 * directory, claimed at start): its id lives there, so a restart after kill -9 knows its own deployments
 * and finds their jobs in its own `jobs/`. While it runs, it renews a lease in the store; an instance whose
 * lease has run out (or that stopped cleanly) is gone.
 */

/** How long a lease lasts without renewal, and how often it is renewed (well within it). */
export const LEASE_MS = 60_000;
export const RENEW_MS = 15_000;

/** The store operations ownership needs (DynamoDeploymentStore has them). */
export interface OwnershipStore {
  claimDeploymentOwner(
    deploymentId: string,
    instanceId: string,
    at: string,
  ): Promise<{ claimed: boolean; owner: string }>;
  getDeploymentOwner(deploymentId: string): Promise<string | undefined>;
  putInstanceLease(lease: InstanceLease): Promise<void>;
  getInstanceLease(instanceId: string): Promise<InstanceLease | undefined>;
}

/** The data directory's instance id, created on first use. */
export function instanceIdOf(dataDir: string): string {
  const file = join(dataDir, 'instance-id');
  try {
    const id = readFileSync(file, 'utf8').trim();
    if (/^[0-9a-f-]{36}$/.test(id)) return id;
  } catch {
    // None yet.
  }
  const id = randomUUID();
  writeFileSync(file, `${id}\n`);
  return id;
}

/** Whose a deployment is, as start-up recovery sees it. */
export type Owner =
  | { kind: 'mine' }
  | { kind: 'live'; instanceId: string; leaseExpiresAt: string }
  | { kind: 'gone'; instanceId: string; since: string }
  | { kind: 'unknown' };

export class InstanceOwnership {
  readonly instanceId: string;
  private readonly store: OwnershipStore;
  private readonly clock: Clock;
  private readonly leaseMs: number;
  private readonly base: Omit<InstanceLease, 'leaseExpiresAt' | 'renewedAt'>;
  private timer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> | undefined;
  private stopped = false;

  constructor(options: {
    store: OwnershipStore;
    instanceId: string;
    dataDir: string;
    clock: Clock;
    leaseMs?: number;
  }) {
    this.store = options.store;
    this.instanceId = options.instanceId;
    this.clock = options.clock;
    this.leaseMs = options.leaseMs ?? LEASE_MS;
    this.base = {
      instanceId: options.instanceId,
      startedAt: this.clock.now().toISOString(),
      hostname: hostname(),
      pid: process.pid,
      dataDir: options.dataDir,
    };
  }

  /**
   * Takes the lease and keeps renewing it until stop(). A live lease of this id held from another host or
   * another data directory means a copied data directory: two servers would each settle the other's work as
   * their own, so this one refuses to start. The same host and directory is this instance after a crash
   * (the data-directory claim has already proved the old process gone).
   */
  async start(renewMs = RENEW_MS): Promise<void> {
    const held = await this.store.getInstanceLease(this.instanceId);
    const live = held && !held.stoppedAt && Date.parse(held.leaseExpiresAt) > this.clock.now().getTime();
    if (live && (held.hostname !== this.base.hostname || held.dataDir !== this.base.dataDir)) {
      throw new ConfigError(
        `server instance ${this.instanceId} is live on ${held.hostname} in ${held.dataDir} (lease until ${held.leaseExpiresAt}): this data directory is a copy of that one. Delete ${join(this.base.dataDir, 'instance-id')} to give it an identity of its own`,
      );
    }
    await this.renew();
    this.timer = setInterval(() => {
      // One renewal at a time, so none can land after stop()'s final write.
      if (this.renewing) return;
      this.renewing = this.renew()
        .catch((error) => {
          // Past the lease, other servers may take this one for gone: say so loudly.
          logger.error('could not renew this server instance lease', { instanceId: this.instanceId, error });
        })
        .finally(() => {
          this.renewing = undefined;
        });
    }, renewMs);
    this.timer.unref();
  }

  async renew(): Promise<void> {
    if (this.stopped) return;
    const now = this.clock.now();
    await this.store.putInstanceLease({
      ...this.base,
      renewedAt: now.toISOString(),
      leaseExpiresAt: new Date(now.getTime() + this.leaseMs).toISOString(),
    });
  }

  /** A clean shutdown, once its jobs are stopped: the lease ends now. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.renewing;
    const now = this.clock.now().toISOString();
    await this.store.putInstanceLease({ ...this.base, renewedAt: now, leaseExpiresAt: now, stoppedAt: now });
  }

  /** Claims a deployment this server is about to create; an earlier claim (another server's) stands. */
  async claim(deploymentId: string): Promise<void> {
    await this.store.claimDeploymentOwner(deploymentId, this.instanceId, this.clock.now().toISOString());
  }

  async ownerOf(deploymentId: string): Promise<Owner> {
    const owner = await this.store.getDeploymentOwner(deploymentId);
    if (owner === undefined) return { kind: 'unknown' };
    if (owner === this.instanceId) return { kind: 'mine' };
    const lease = await this.store.getInstanceLease(owner);
    // No lease at all: the instance crashed before its first write, or was never a server. Not provably gone.
    if (!lease) return { kind: 'unknown' };
    if (Date.parse(lease.leaseExpiresAt) > this.clock.now().getTime()) {
      return { kind: 'live', instanceId: owner, leaseExpiresAt: lease.leaseExpiresAt };
    }
    return { kind: 'gone', instanceId: owner, since: lease.stoppedAt ?? lease.leaseExpiresAt };
  }
}

/**
 * The store this server's cores use: every deployment it creates in flight is claimed for this instance
 * first, whichever path creates it (API, CLI, chat, a schedule's Validate Request).
 */
export function owningStore(store: DeploymentStore, ownership: Pick<InstanceOwnership, 'claim'>) {
  return new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (property !== 'createDeployment' || typeof value !== 'function') {
        return typeof value === 'function' ? value.bind(target) : value;
      }
      return async (deployment: Deployment) => {
        if (!isTerminal(deployment.status)) await ownership.claim(deployment.deploymentId);
        return target.createDeployment(deployment);
      };
    },
  });
}

/**
 * A deployment whose server is gone may still have a job running: its jobs ran in that server's data
 * directory, which this server cannot see or stop. Only a deployment whose every job has a recorded result,
 * and which is not between starting a job and recording it, can be settled from here.
 */
export function jobsAccountedFor(deployment: Deployment): boolean {
  // A terminal record was written after its settle step (Record Failure, the reconciler) or its last job.
  if (isTerminal(deployment.status)) return true;
  const jobs = Object.values(deployment.jobs ?? {});
  if (jobs.some((job) => job && (job.status === undefined || job.status === 'IN_PROGRESS'))) return false;
  const current =
    deployment.phase === 'BUILDING' ? 'build' : deployment.phase === 'DEPLOYING' ? 'deploy' : undefined;
  return current === undefined || deployment.jobs?.[current] !== undefined;
}
