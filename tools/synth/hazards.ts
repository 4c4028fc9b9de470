import { ageOf, isPlausibleBirthDate } from './dates.js';
import { accentedForm, drawNickname, drawSurname, hasDiacritics, hasNickname, stripDiacritics } from './names.js';
import { drawAddress, drawPhone, type Person } from './population.js';
import { choose, type Rng } from './random.js';

/**
 * Perturbations ("hazards") applied to the person a query describes, at rates meant to resemble what a new
 * payer actually sends: the person as they wrote their name on an enrolment form, after moving house, with a
 * clerk's typo. Each hazard names itself in truth.csv so an evaluation can break accuracy down by hazard.
 */

/** The demographics a query carries; starts as a copy of the person, then hazards edit it. */
export interface QueryPerson {
  given: string;
  /** Further given names (middle names), in order. */
  middle: string[];
  family: string;
  suffix: string | null;
  birthDate: string;
  gender: 'male' | 'female' | 'unknown';
  address: { line: string; city: string; state: string; postalCode: string } | null;
  phone: string | null;
  email: string | null;
}

export function queryPersonOf(person: Person): QueryPerson {
  return {
    given: person.given,
    middle: person.middle ? [person.middle] : [],
    family: person.family,
    suffix: person.suffix,
    birthDate: person.birthDate,
    gender: person.sex,
    address: {
      line: person.address.line,
      city: person.address.city,
      state: person.address.state,
      postalCode: person.address.postalCode,
    },
    phone: person.phone,
    email: person.email,
  };
}

interface HazardContext {
  sex: 'male' | 'female';
  areaCode: string;
}

interface Hazard {
  /** Weight among the hazards that apply to this person. */
  weight: number;
  applies(p: QueryPerson, ctx: HazardContext): boolean;
  /** Edits `p` and returns the tag for truth.csv, or null when it could not (the hazard is then not counted). */
  apply(rng: Rng, p: QueryPerson, ctx: HazardContext): string | null;
}

// Adjacent keys on a QWERTY keyboard: substitutions are mostly fat-finger slips.
const NEIGHBOURS: Record<string, string> = {
  a: 'qwsz', b: 'vghn', c: 'xdfv', d: 'serfcx', e: 'wsdr', f: 'drtgvc', g: 'ftyhbv', h: 'gyujnb', i: 'ujko', j: 'huikmn',
  k: 'jiolm', l: 'kop', m: 'njk', n: 'bhjm', o: 'iklp', p: 'ol', q: 'wa', r: 'edft', s: 'awedxz', t: 'rfgy', u: 'yhji',
  v: 'cfgb', w: 'qase', x: 'zsdc', y: 'tghu', z: 'asx',
};
const LETTERS = 'abcdefghijklmnopqrstuvwxyz';

/**
 * One keyboard error in a name: insertion, deletion, substitution or transposition of adjacent letters. The
 * result keeps the original's capitalisation pattern and differs from it once folded; undefined when the name
 * is too short to damage.
 */
export function typo(rng: Rng, name: string): string | undefined {
  const chars = [...name];
  const upper = chars.map((c) => c !== c.toLowerCase());
  const letters = chars.flatMap((c, i) => (/\p{L}/u.test(c) ? [i] : []));
  if (letters.length < 3) return undefined;
  const folded = (s: string) => stripDiacritics(s).toLowerCase().replace(/[^a-z]/g, '');
  for (let attempt = 0; attempt < 10; attempt++) {
    const out = chars.map((c) => c.toLowerCase());
    const caps = [...upper];
    const at = rng.pick(letters);
    const op = choose(rng, { substitution: 4, deletion: 3, insertion: 2, transposition: 2 });
    if (op === 'substitution') {
      const near = NEIGHBOURS[stripDiacritics(out[at] as string)] ?? LETTERS;
      out[at] = rng.pick([...near]);
    } else if (op === 'deletion') {
      out.splice(at, 1);
      const firstCap = caps[0] as boolean;
      caps.splice(at, 1);
      if (at === 0) caps[0] = firstCap;
    } else if (op === 'insertion') {
      // Doubled letters ("Phillip") are the commonest insertion; otherwise a neighbouring key.
      const letter = rng.chance(0.5) ? (out[at] as string) : rng.pick([...(NEIGHBOURS[out[at] as string] ?? LETTERS)]);
      out.splice(at + 1, 0, letter);
      caps.splice(at + 1, 0, false);
    } else {
      const next = letters[letters.indexOf(at) + 1];
      if (next !== at + 1) continue;
      [out[at], out[next]] = [out[next] as string, out[at] as string];
    }
    const result = out.map((c, i) => (caps[i] ? c.toUpperCase() : c)).join('');
    if (folded(result) !== folded(name) && folded(result).length >= 2) return result;
  }
  return undefined;
}

function moveDigit(rng: Rng, birthDate: string): string | undefined {
  // A slip in one of the last six digits (decade, year, month, day); the century is rarely mistyped.
  const digits = birthDate.replace(/-/g, '');
  for (let attempt = 0; attempt < 40; attempt++) {
    const at = rng.int(2, 7);
    const digit = String(rng.int(0, 9));
    if (digit === digits[at]) continue;
    const changed = digits.slice(0, at) + digit + digits.slice(at + 1);
    const iso = `${changed.slice(0, 4)}-${changed.slice(4, 6)}-${changed.slice(6, 8)}`;
    if (isPlausibleBirthDate(iso)) return iso;
  }
  return undefined;
}

/** In application order: name changes before typos in the changed name, the date, then contact data. */
const HAZARDS: Record<string, Hazard> = {
  'married-name': {
    weight: 8,
    // Adult women (men change names on marriage too, but rarely enough to leave out): a new family name, or
    // the old and new joined by a hyphen.
    applies: (p, ctx) => ageOf(p.birthDate) >= 20 && ctx.sex === 'female',
    apply(rng, p) {
      const next = drawSurname(rng).name;
      if (next === p.family) return null;
      p.family = rng.chance(0.3) ? `${p.family.split(' ')[0]}-${next}` : next;
      return 'married-name';
    },
  },
  'typo-family': {
    weight: 8,
    applies: (p) => stripDiacritics(p.family).replace(/[^A-Za-z]/g, '').length >= 3,
    apply(rng, p) {
      const changed = typo(rng, p.family);
      if (!changed) return null;
      p.family = changed;
      return 'typo-family';
    },
  },
  'given-middle-swap': {
    weight: 4,
    // The person goes by the middle name (J. Robert Smith enrolled as Robert).
    applies: (p) => (p.middle[0]?.length ?? 0) > 1,
    apply(_rng, p) {
      const middle = p.middle[0] as string;
      p.middle = [p.given, ...p.middle.slice(1)];
      p.given = middle;
      return 'given-middle-swap';
    },
  },
  'names-exchanged': {
    weight: 2,
    // Given and family names written in each other's boxes on a form.
    applies: (p) => p.given !== p.family,
    apply(_rng, p) {
      [p.given, p.family] = [p.family, p.given];
      return 'names-exchanged';
    },
  },
  nickname: {
    weight: 12,
    applies: (p) => hasNickname(p.given),
    apply(rng, p, ctx) {
      const nickname = drawNickname(rng, p.given, ctx.sex);
      if (!nickname) return null;
      p.given = nickname;
      return 'nickname';
    },
  },
  'typo-given': {
    weight: 8,
    applies: (p) => stripDiacritics(p.given).replace(/[^A-Za-z]/g, '').length >= 3,
    apply(rng, p) {
      const changed = typo(rng, p.given);
      if (!changed) return null;
      p.given = changed;
      return 'typo-given';
    },
  },
  diacritics: {
    weight: 10,
    // Accents dropped by a system that only takes ASCII, or added by a person who writes them.
    applies: (p) =>
      [p.given, p.family].some((n) => hasDiacritics(n) || n.split(/[\s-]/).some((part) => accentedForm(part) !== undefined)),
    apply(_rng, p) {
      if (hasDiacritics(p.given) || hasDiacritics(p.family)) {
        p.given = stripDiacritics(p.given);
        p.family = stripDiacritics(p.family);
        p.middle = p.middle.map(stripDiacritics);
        return 'diacritics-dropped';
      }
      const accent = (name: string) => name.replace(/[^\s-]+/g, (part) => accentedForm(part) ?? part);
      p.given = accent(p.given);
      p.family = accent(p.family);
      return 'diacritics-added';
    },
  },
  'suffix-dropped': {
    weight: 40,
    applies: (p) => p.suffix !== null,
    apply(_rng, p) {
      p.suffix = null;
      return 'suffix-dropped';
    },
  },
  'dob-transposed': {
    weight: 4,
    // Day and month swapped (US vs European order): only possible when the day could be a month.
    applies: (p) => {
      const [month, day] = [p.birthDate.slice(5, 7), p.birthDate.slice(8, 10)];
      return Number(day) <= 12 && day !== month && isPlausibleBirthDate(`${p.birthDate.slice(0, 4)}-${day}-${month}`);
    },
    apply(_rng, p) {
      p.birthDate = `${p.birthDate.slice(0, 4)}-${p.birthDate.slice(8, 10)}-${p.birthDate.slice(5, 7)}`;
      return 'dob-transposed';
    },
  },
  'dob-digit': {
    weight: 5,
    applies: () => true,
    apply(rng, p) {
      const changed = moveDigit(rng, p.birthDate);
      if (!changed) return null;
      p.birthDate = changed;
      return 'dob-digit';
    },
  },
  moved: {
    weight: 16,
    // A new address since the roster was written; usually a new phone number with it.
    applies: () => true,
    apply(rng, p, ctx) {
      const address = drawAddress(rng, p.address ? { ...p.address, areaCode: ctx.areaCode } : undefined);
      if (p.address && address.line === p.address.line && address.postalCode === p.address.postalCode) return null;
      p.address = { line: address.line, city: address.city, state: address.state, postalCode: address.postalCode };
      if (p.phone && rng.chance(0.6)) p.phone = drawPhone(rng, address.areaCode);
      return 'moved';
    },
  },
  'typo-street': {
    weight: 4,
    // A keyboard slip in one word of the street line (the house number is kept).
    applies: (p) => p.address !== null && p.address.line.split(' ').some((w) => /^[A-Za-z]{4,}$/.test(w)),
    apply(rng, p) {
      const words = p.address!.line.split(' ');
      const at = rng.pick(words.flatMap((w, i) => (/^[A-Za-z]{4,}$/.test(w) ? [i] : [])));
      const changed = typo(rng, words[at]!);
      if (!changed) return null;
      words[at] = changed;
      p.address = { ...p.address!, line: words.join(' ') };
      return 'typo-street';
    },
  },
  'typo-postcode': {
    weight: 3,
    applies: (p) => p.address !== null && /^\d{5}$/.test(p.address.postalCode),
    apply(rng, p) {
      const code = p.address!.postalCode;
      const at = rng.int(1, 4);
      const digit = String((Number(code[at]) + rng.int(1, 9)) % 10);
      p.address = { ...p.address!, postalCode: code.slice(0, at) + digit + code.slice(at + 1) };
      return 'typo-postcode';
    },
  },
  'missing-middle': {
    weight: 6,
    applies: (p) => p.middle.length > 0,
    apply(_rng, p) {
      p.middle = [];
      return 'missing-middle';
    },
  },
  'missing-phone': {
    weight: 6,
    applies: (p) => p.phone !== null,
    apply(_rng, p) {
      p.phone = null;
      return 'missing-phone';
    },
  },
  'missing-email': {
    weight: 6,
    applies: (p) => p.email !== null,
    apply(_rng, p) {
      p.email = null;
      return 'missing-email';
    },
  },
  'missing-address': {
    weight: 3,
    applies: (p) => p.address !== null,
    apply(_rng, p) {
      p.address = null;
      return 'missing-address';
    },
  },
  'missing-gender': {
    weight: 2,
    // HRex requires a gender, so a sender that has none says "unknown".
    applies: () => true,
    apply(_rng, p) {
      p.gender = 'unknown';
      return 'missing-gender';
    },
  },
};

/** Pairs that cannot both happen to one query (a swapped given name is not then nicknamed, and so on). */
const CONFLICTS: [string, string][] = [
  ['nickname', 'given-middle-swap'],
  ['typo-given', 'given-middle-swap'],
  ['missing-middle', 'given-middle-swap'],
  ['dob-transposed', 'dob-digit'],
  ['moved', 'missing-address'],
  ['moved', 'typo-street'],
  ['moved', 'typo-postcode'],
  ['typo-street', 'missing-address'],
  ['typo-postcode', 'missing-address'],
  ['names-exchanged', 'married-name'],
  ['names-exchanged', 'nickname'],
  ['names-exchanged', 'given-middle-swap'],
];

export const HAZARD_NAMES = Object.keys(HAZARDS);

/**
 * How many hazards a query gets: most none to two. A partner's record of a member is more often off than
 * the record of a non-member we invent, whose data is already different by construction.
 */
export function drawHazardCount(rng: Rng, nonMember: boolean): number {
  return Number(nonMember ? choose(rng, { 0: 45, 1: 40, 2: 15 }) : choose(rng, { 0: 30, 1: 42, 2: 21, 3: 7 }));
}

/**
 * Applies `count` distinct applicable hazards to `p` (fewer when fewer apply) and returns their tags in
 * application order.
 */
export function applyHazards(rng: Rng, p: QueryPerson, count: number, ctx: HazardContext): string[] {
  const chosen = new Set<string>();
  for (let i = 0; i < count; i++) {
    const candidates = HAZARD_NAMES.filter(
      (name) =>
        !chosen.has(name) &&
        !CONFLICTS.some(([a, b]) => (a === name && chosen.has(b)) || (b === name && chosen.has(a))) &&
        (HAZARDS[name] as Hazard).applies(p, ctx),
    );
    if (candidates.length === 0) break;
    const weights = Object.fromEntries(candidates.map((name) => [name, (HAZARDS[name] as Hazard).weight]));
    chosen.add(choose(rng, weights));
  }
  const tags: string[] = [];
  for (const name of HAZARD_NAMES) {
    if (!chosen.has(name)) continue;
    const hazard = HAZARDS[name] as Hazard;
    // An earlier hazard may have made this one inapplicable (no middle name left to swap): skip it.
    if (!hazard.applies(p, ctx)) continue;
    const tag = hazard.apply(rng, p, ctx);
    if (tag) tags.push(tag);
  }
  return tags;
}
