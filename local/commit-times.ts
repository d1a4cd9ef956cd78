import { execFile } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { promisify } from 'node:util';
import { logger } from '#shared/logger.ts';
import type { CommitTimes } from '#shared/ports.ts';
import type { Registry } from '#shared/registry/registry.ts';

const run = promisify(execFile);
/** Only full object names reach git, as separate arguments: never a ref, an option or a shell word. */
const COMMIT = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

/**
 * Lead time's commit times in local mode: `git show` in each application's `source.localPath` (the
 * repository local builds check out). A commit git does not know there is left out, not guessed.
 */
export class GitCommitTimes implements CommitTimes {
  private readonly registry: Registry;
  private readonly registryDir: string;

  constructor(options: { registry: Registry; registryPath: string }) {
    this.registry = options.registry;
    this.registryDir = dirname(options.registryPath);
  }

  async lookup(application: string, commits: string[]): Promise<Map<string, string>> {
    const times = new Map<string, string>();
    const localPath = this.registry.applications[application]?.source.localPath;
    const wanted = commits.filter((c) => COMMIT.test(c));
    if (!localPath || wanted.length === 0) return times;
    const dir = resolve(this.registryDir, localPath);
    for (const commit of wanted) {
      try {
        const { stdout } = await run('git', ['-C', dir, 'show', '-s', '--format=%cI', commit, '--'], {
          timeout: 10_000,
        });
        const committedAt = new Date(stdout.trim());
        if (!Number.isNaN(committedAt.getTime())) times.set(commit, committedAt.toISOString());
      } catch (error) {
        logger.debug('commit time unknown', { application, commit, error });
      }
    }
    return times;
  }
}
