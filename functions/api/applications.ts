import { activeFreeze, nextRun } from '#shared/registry/calendar.ts';
import { describeRegistry, type Registry } from '#shared/registry/registry.ts';

/**
 * GET /applications: the registry's description, plus what is true now of each environment: the freeze window
 * it is in (if any) and its next scheduled promotion (if a schedule promotes into it). The console's grid
 * shows both; neither carries a role ARN or an ExternalId.
 */
export function describeApplications(registry: Registry, now: Date) {
  const described = describeRegistry(registry);
  return {
    items: described.items.map((app) => {
      const config = registry.applications[app.name];
      return {
        ...app,
        environments: app.environments.map((env) => {
          const freeze = activeFreeze(config?.environments[env.name]?.freezeWindows ?? [], now);
          const next = (config?.schedules ?? [])
            .filter((s) => s.enabled && s.to === env.name)
            .map((s) => ({
              schedule: s.name,
              from: s.from,
              at: nextRun(s.schedule, s.timezone, now).toISOString(),
            }))
            .sort((a, b) => a.at.localeCompare(b.at))[0];
          return {
            ...env,
            ...(freeze ? { frozen: { window: freeze.name, endsAt: freeze.endsAt } } : {}),
            ...(next ? { nextPromotion: next } : {}),
          };
        }),
      };
    }),
  };
}
