/**
 * A reference for IAM's ARN matching, written from the IAM User Guide, "IAM JSON policy elements: Resource",
 * section "Using wildcards in resource ARNs"
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html):
 *
 * - wildcards are used within the individual segments of an ARN, the parts separated by colons: `*` stands for
 *   any combination of characters, `?` for any single character, and a segment may hold several of each;
 * - a `*` that is the last character of a segment can expand past the colon boundaries;
 * - the service segment takes no wildcard;
 * - names are case-sensitive ("the IAM user name is case sensitive").
 *
 * It is deliberately plain (recursion over characters and segments, no regular expressions) so that it shares
 * nothing with the product's matcher in functions/shared/registry/requester.ts, which the property tests hold to it.
 */

/** Whether `glob` matches all of `text`, one segment: `*` any run of characters, `?` exactly one. */
export function segmentGlob(glob: string, text: string): boolean {
  const g = [...glob];
  const t = [...text];
  const memo = new Map<string, boolean>();
  const at = (i: number, j: number): boolean => {
    const key = `${i},${j}`;
    const known = memo.get(key);
    if (known !== undefined) return known;
    let result: boolean;
    if (i === g.length) result = j === t.length;
    else if (g[i] === '*') result = at(i + 1, j) || (j < t.length && at(i, j + 1));
    else if (j === t.length) result = false;
    else result = (g[i] === '?' || g[i] === t[j]) && at(i + 1, j + 1);
    memo.set(key, result);
    return result;
  };
  return at(0, 0);
}

/** Whether some prefix of `text` matches `glob`. */
function prefixGlob(glob: string, text: string): boolean {
  const t = [...text];
  for (let n = 0; n <= t.length; n++) if (segmentGlob(glob, t.slice(0, n).join(''))) return true;
  return false;
}

/** Whether the ARN pattern (a policy's Resource) matches the ARN, as the IAM User Guide describes it. */
export function iamArnMatches(pattern: string, arn: string): boolean {
  const p = pattern.split(':');
  const v = arn.split(':');
  if (p.length < 3 || v.length < 3 || p[0] !== 'arn' || v[0] !== 'arn') return false;
  if ((p[2] ?? '').includes('*') || (p[2] ?? '').includes('?') || p[2] !== v[2]) return false;
  const segments = (i: number, j: number): boolean => {
    if (i === p.length) return j === v.length;
    if (j === v.length) return false;
    const glob = p[i] ?? '';
    if (segmentGlob(glob, v[j] ?? '') && segments(i + 1, j + 1)) return true;
    if (!glob.endsWith('*')) return false;
    // The final `*` runs on past colons: the head matches the start of this segment, the star takes the rest
    // of it and whole segments after it.
    const head = glob.slice(0, -1);
    if (!prefixGlob(head, v[j] ?? '')) return false;
    for (let k = j + 1; k < v.length; k++) if (segments(i + 1, k + 1)) return true;
    return false;
  };
  return segments(0, 0);
}
