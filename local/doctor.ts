import { STSClient } from '@aws-sdk/client-sts';
import { ulid } from 'ulid';
import type { Clock } from '#shared/ports.ts';
import type { Registry } from '#shared/registry/registry.ts';
import { AwsDoctorProbe } from '../functions/doctor/aws-probe.ts';
import type { DoctorTarget } from '../functions/doctor/checks.ts';
import { createDoctorApi, type DoctorApi } from '../functions/doctor/routes.ts';
import { MemoryDoctorRunStore } from '../functions/doctor/run-store.ts';
import { localRunnerOf } from './targets.ts';

/**
 * The doctor's routes in local mode: the same core as the DoctorFunction, with the user's own credentials
 * (as local jobs use them), runs kept in memory, and nothing sent to AWS for `runner: simulate` environments.
 */
export function localDoctorApi(registry: Registry, clock: Clock = { now: () => new Date() }): DoctorApi {
  const probes = new Map<string, AwsDoctorProbe>();
  const probeFor = (target: DoctorTarget) => {
    // STS where the local deploy job's helper calls it: the configured region, else the target's.
    const region = process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || target.env.region;
    let probe = probes.get(region);
    if (!probe) {
      probe = new AwsDoctorProbe({ sts: new STSClient({ region }) });
      probes.set(region, probe);
    }
    return probe;
  };
  return createDoctorApi({
    registry,
    store: new MemoryDoctorRunStore(),
    probeFor,
    clock,
    newId: ulid,
    mode: 'local',
    isSimulated: (target) => localRunnerOf(target.env.runner) === 'simulate',
  });
}
