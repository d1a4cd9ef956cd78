import type { IamInventory } from './inventory.ts';

const plural = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;

/** `IAM: 2 roles, 14 actions, 1 wildcard` */
export const inventoryHeadline = (inventory: Pick<IamInventory, 'roles' | 'actions' | 'wildcards'>): string =>
  `IAM: ${plural(inventory.roles, 'role')}, ${plural(inventory.actions, 'action')}, ${plural(inventory.wildcards, 'wildcard')}`;

/** How many actions a line lists before "(+N more)". */
const ACTIONS_PER_LINE = 12;

/**
 * The IAM inventory as short text lines: each role with whom it trusts, each holder with its actions, managed
 * policies and wildcards (marked `!`), then "… and N more" for what the record left out. No imports, so the
 * CLI renders what the API sends with the same code (deployments/approval.ts `iamInventoryLines` for the rest).
 */
export function inventoryLines(inventory: IamInventory): string[] {
  const lines = [inventoryHeadline(inventory)];
  // A role's actions also come from the standalone policies attached to it: named on the role's lines too.
  const policiesOf = new Map<string, string[]>();
  for (const entry of inventory.entries) {
    for (const holder of entry.attachedTo)
      policiesOf.set(holder, [...(policiesOf.get(holder) ?? []), entry.id]);
  }
  for (const entry of inventory.entries) {
    const head =
      entry.kind === 'role'
        ? `role ${entry.id}`
        : `${entry.kind === 'resource-policy' ? 'resource policy' : entry.kind} ${entry.id} (${entry.type})`;
    const attached = entry.attachedTo.length > 0 ? `, attached to ${entry.attachedTo.join(', ')}` : '';
    lines.push(`${head}${attached}`);
    if (entry.principals.length > 0) {
      const more = entry.morePrincipals ? ` (+${entry.morePrincipals} more)` : '';
      lines.push(`  ${entry.kind === 'role' ? 'trusts' : 'lets in'}: ${entry.principals.join('; ')}${more}`);
    }
    if (entry.actions.length > 0) {
      const hidden = entry.actions.length - ACTIONS_PER_LINE + (entry.moreActions ?? 0);
      const listed = entry.actions.slice(0, ACTIONS_PER_LINE).join(', ');
      lines.push(`  actions: ${listed}${hidden > 0 ? ` (+${hidden} more)` : ''}`);
    }
    const attachedPolicies = policiesOf.get(entry.id) ?? [];
    if (attachedPolicies.length > 0) lines.push(`  policies: ${attachedPolicies.join(', ')}`);
    if (entry.managedPolicies.length > 0) lines.push(`  managed: ${entry.managedPolicies.join(', ')}`);
    if (entry.boundary) lines.push(`  boundary: ${entry.boundary}`);
    if (entry.wildcards.length > 0) lines.push(`  ! ${entry.wildcards.join(', ')}`);
  }
  if (inventory.omitted > 0) lines.push(`… and ${inventory.omitted} more`);
  return lines;
}
