import { type ChildProcess, spawn } from 'node:child_process';

/** Where a local job's source comes from: a commit of the repository, never its working copy. */

/** The ref as a commit: a local branch, tag or SHA first, then the `origin` branch of that name (a CI clone). */
export async function resolveCommit(
  ref: string,
  git: (args: string[]) => Promise<string>,
): Promise<string | undefined> {
  const candidates = [ref];
  if (!/^[0-9a-f]{7,64}$/.test(ref)) candidates.push(`refs/remotes/origin/${ref}`);
  for (const candidate of candidates) {
    try {
      const sha = await git([
        'rev-parse',
        '--verify',
        '--quiet',
        '--end-of-options',
        `${candidate}^{commit}`,
      ]);
      if (/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(sha)) return sha;
    } catch {
      // not this one
    }
  }
  return undefined;
}

/** `git archive <tree-ish> | tar -x`: the committed tree, nothing from the working copy. */
export async function archiveInto(repo: string, treeish: string, dest: string): Promise<void> {
  const archive = spawn('git', ['archive', '--format=tar', treeish], {
    cwd: repo,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const extract = spawn('tar', ['-x', '-f', '-', '-C', dest], { stdio: ['pipe', 'ignore', 'pipe'] });
  archive.stdout.pipe(extract.stdin);
  let errors = '';
  archive.stderr.on('data', (chunk) => {
    errors += chunk;
  });
  extract.stderr.on('data', (chunk) => {
    errors += chunk;
  });
  const ended = (child: ChildProcess) =>
    new Promise<number | null>((resolveEnd, reject) => {
      child.once('error', reject);
      child.once('close', resolveEnd);
    });
  const [archiveCode, extractCode] = await Promise.all([ended(archive), ended(extract)]);
  if (archiveCode !== 0 || extractCode !== 0) {
    throw new Error(`git archive ${treeish} failed: ${errors.trim().split('\n')[0] ?? 'no output'}`);
  }
}
