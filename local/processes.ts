import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';

/**
 * Process groups of local jobs, identified so that a reused pid is never signalled: a job is recorded as
 * its process group id (the leader's pid: jobs are spawned detached) plus the leader's start time.
 */

export interface ProcessIdentity {
  pid: number;
  pgid: number;
  /** Opaque and comparable: clock ticks since boot (field 22 of /proc/<pid>/stat), or ps's lstart in ms. */
  startTime: number;
}

const HAS_PROC = existsSync('/proc/self/stat');

/** pgid and start time of a live process, or undefined when it does not exist (or is a zombie). */
export function processIdentity(pid: number): ProcessIdentity | undefined {
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  if (HAS_PROC) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return undefined;
    }
    return parseProcStat(pid, stat);
  }
  return psIdentities(['-p', String(pid)]).find((p) => p.pid === pid);
}

/**
 * /proc/<pid>/stat: "pid (comm) state ppid pgrp ... starttime(22) ...". comm may hold spaces and
 * parentheses, so fields are counted from the last ')'.
 */
export function parseProcStat(pid: number, stat: string): ProcessIdentity | undefined {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); pgrp is field 5, starttime field 22.
  const state = fields[0];
  const pgid = Number(fields[2]);
  const startTime = Number(fields[19]);
  if (state === 'Z' || state === 'X' || !Number.isFinite(pgid) || !Number.isFinite(startTime))
    return undefined;
  return { pid, pgid, startTime };
}

function psIdentities(selection: string[]): ProcessIdentity[] {
  let out: string;
  try {
    out = execFileSync('ps', [...selection, '-o', 'pid=', '-o', 'pgid=', '-o', 'stat=', '-o', 'lstart='], {
      encoding: 'utf8',
      env: { ...process.env, LC_ALL: 'C' },
    });
  } catch {
    return [];
  }
  return out
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(\d+)\s+(\S+)\s+(.+?)\s*$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null && !m[3]!.startsWith('Z'))
    .map((m) => ({ pid: Number(m[1]), pgid: Number(m[2]), startTime: Date.parse(m[4]!) }));
}

function allProcesses(): ProcessIdentity[] {
  if (!HAS_PROC) return psIdentities(['-A']);
  const found: ProcessIdentity[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const identity = processIdentity(Number(name));
    if (identity) found.push(identity);
  }
  return found;
}

/**
 * The live members of a job's process group, proven to be the job's:
 * - while the leader lives, it must be the recorded process (same pid, pgid and start time);
 * - once the leader is gone, its children may still hold the group. Linux does not hand out a pid that is
 *   still some group's id, so such a group is the job's, provided no member started before the job did.
 * A group led by another process (a reused pid that became a leader) is never returned.
 */
export function jobGroupMembers(job: { pgid: number; startTime: number }): ProcessIdentity[] {
  const leader = processIdentity(job.pgid);
  if (leader) {
    if (leader.pgid !== job.pgid || leader.startTime !== job.startTime) return [];
  }
  const members = allProcesses().filter((p) => p.pgid === job.pgid);
  if (members.some((p) => p.pid === job.pgid && p.startTime !== job.startTime)) return [];
  if (members.some((p) => p.startTime < job.startTime)) return [];
  return members;
}

/**
 * The environment variable every local job process carries (inherited by everything it starts), naming its
 * job. A job spawned just before the server died has no recorded process group yet; this finds it anyway.
 */
export const JOB_MARKER = 'CROSSDEPLOY_JOB_ID';

/** Whether markedProcesses can see other processes' environments (Linux /proc); elsewhere it finds nothing. */
export const CAN_FIND_MARKED = HAS_PROC;

/**
 * Live processes whose initial environment holds `CROSSDEPLOY_JOB_ID=<jobId>`. Job ids are random UUIDs,
 * so a process carrying one descends from that job: a reused pid cannot carry it. Processes of other users
 * (unreadable environ) are skipped.
 */
export function markedProcesses(jobId: string): ProcessIdentity[] {
  if (!HAS_PROC) return [];
  const marker = Buffer.from(`${JOB_MARKER}=${jobId}\0`);
  const found: ProcessIdentity[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    let environ: Buffer;
    try {
      environ = readFileSync(`/proc/${name}/environ`);
    } catch {
      continue;
    }
    // Entries are NUL-terminated; a leading NUL keeps `XCROSSDEPLOY_JOB_ID=` from matching.
    if (!Buffer.concat([Buffer.from('\0'), environ]).includes(Buffer.concat([Buffer.from('\0'), marker])))
      continue;
    const identity = processIdentity(Number(name));
    if (identity) found.push(identity);
  }
  return found;
}

/**
 * Stops the processes carrying a job's marker: TERM, then KILL after the grace period. Each signal goes to a
 * pid only while it is still the process that was found (same start time), so a pid reused between the
 * scan and the signal is left alone. Resolves with whether any process was found.
 */
export async function stopMarkedProcesses(jobId: string, graceMs: number): Promise<boolean> {
  // Scanned afresh each round: a process the job started meanwhile carries the marker too.
  const signal = (name: NodeJS.Signals) => {
    const found = markedProcesses(jobId);
    for (const target of found) {
      if (processIdentity(target.pid)?.startTime !== target.startTime) continue;
      try {
        process.kill(target.pid, name);
      } catch {
        // gone in the meantime
      }
    }
    return found.length;
  };
  if (signal('SIGTERM') === 0) return false;
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    await sleep(50);
    if (markedProcesses(jobId).length === 0) return true;
  }
  for (let i = 0; i < 100 && signal('SIGKILL') > 0; i++) await sleep(50);
  return true;
}

export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Stops a job's process group: TERM, then KILL after the grace period, each time re-checking that the group
 * is still the job's. Resolves once no member is left (or the group turned out not to be ours).
 */
export async function stopJobGroup(
  job: { pgid: number; startTime: number },
  graceMs: number,
): Promise<boolean> {
  if (jobGroupMembers(job).length === 0) return false;
  signalGroup(job.pgid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    await sleep(50);
    if (jobGroupMembers(job).length === 0) return true;
  }
  for (let i = 0; i < 100 && jobGroupMembers(job).length > 0; i++) {
    signalGroup(job.pgid, 'SIGKILL');
    await sleep(50);
  }
  return true;
}
