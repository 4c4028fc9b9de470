/**
 * Given-name nickname equivalence from `fixtures/nicknames.csv` (carltonnorthern/nicknames, Apache-2.0; see
 * `fixtures/nicknames.LICENSE.md`). Rows read `name1,has_nickname,name2`: name1 is a canonical name, name2 one
 * of its nicknames or diminutives.
 *
 * The canonical set of a name is the name itself plus every name1 that lists it as a nickname. Two names are
 * nickname-equivalent when their canonical sets intersect, which happens exactly when they are equal, when one
 * is a canonical form of the other (WILLIAM / BILL), or when both are nicknames of one canonical name
 * (PEG / PEGGY via MARGARET). The relation is deliberately *not* closed transitively: the table links names in
 * long chains (JON → JOHN → IAN, OLIVER → OLLIE ← OLIVIA), and a transitive closure would put twins Oliver
 * and Olivia into one cluster.
 */
import { readFileSync } from 'node:fs';
import { projectFile } from '../project-files.js';

let canonicalOf: Map<string, readonly string[]> | undefined;

/** Upper case, letters only. The table is plain ASCII; given names reach us already folded by `nameKey`. */
function fold(name: string): string {
  return name.toUpperCase().replace(/[^A-Z]/g, '');
}

/** Parses the CSV text into nickname → sorted canonical names (the nickname itself not included). */
export function parseNicknameTable(text: string): Map<string, readonly string[]> {
  const parents = new Map<string, Set<string>>();
  for (const line of text.split(/\r?\n/)) {
    const cells = line.split(',');
    if (cells.length < 3) continue;
    const [name1, relationship, name2] = cells as [string, string, string];
    if (relationship.trim() !== 'has_nickname') continue; // also skips the header row
    const canonical = fold(name1);
    const nickname = fold(name2);
    if (!canonical || !nickname || canonical === nickname) continue;
    let set = parents.get(nickname);
    if (!set) parents.set(nickname, (set = new Set()));
    set.add(canonical);
  }
  const table = new Map<string, readonly string[]>();
  for (const [nickname, set] of parents) table.set(nickname, [...set].sort());
  return table;
}

function table(): Map<string, readonly string[]> {
  canonicalOf ??= parseNicknameTable(readFileSync(projectFile('fixtures', 'nicknames.csv'), 'utf8'));
  return canonicalOf;
}

/**
 * The sorted canonical names a folded (upper-case, letters only) given name belongs to, itself included:
 * `BILL` → [`BILL`, `WILLIAM`], `WILLIAM` → [`WILLIAM`], `ZEBEDIAH`-like unknown names → [themselves].
 * An empty name has no canonical set.
 */
export function canonicalGivenNames(folded: string): string[] {
  const name = fold(folded);
  if (!name) return [];
  const parents = table().get(name);
  if (!parents) return [name];
  return [...new Set([name, ...parents])].sort();
}

/** True when two canonical sets (as returned by `canonicalGivenNames`, sorted) share a name. */
export function canonicalSetsIntersect(a: readonly string[], b: readonly string[]): boolean {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a[i] as string;
    const y = b[j] as string;
    if (x === y) return true;
    if (x < y) i++;
    else j++;
  }
  return false;
}
