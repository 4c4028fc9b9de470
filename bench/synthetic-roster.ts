/**
 * A deterministic synthetic US-style roster CSV (the format documented in src/members/roster-import.ts), for
 * benchmarks. Same seed → same file. One row per member, every member_id unique. Members come in households
 * of 1–5 on one contract (shared subscriber_id and coverage_id; relationship self/spouse/child), with some
 * twins (same birth date, different given names). Within a household no two members share a given name, so
 * every row is resolvable by its coverage id plus demographics. All values are made up.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { ROSTER_CSV_COLUMNS } from '../src/members/roster-csv.js';

/** mulberry32: a small, fast, seedable PRNG (not for anything but test data). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MALE = [
  'James', 'Robert', 'John', 'Michael', 'David', 'William', 'Richard', 'Joseph', 'Thomas', 'Christopher',
  'Charles', 'Daniel', 'Matthew', 'Anthony', 'Mark', 'Donald', 'Steven', 'Andrew', 'Paul', 'Joshua',
  'Kenneth', 'Kevin', 'Brian', 'George', 'Timothy', 'Ronald', 'Jason', 'Edward', 'Jeffrey', 'Ryan',
  'Jacob', 'Gary', 'Nicholas', 'Eric', 'Jonathan', 'Stephen', 'Larry', 'Justin', 'Scott', 'Brandon',
  'Benjamin', 'Samuel', 'Gregory', 'Alexander', 'Patrick', 'Frank', 'Raymond', 'Jack', 'Dennis', 'Jerry',
  'Tyler', 'Aaron', 'Jose', 'Adam', 'Nathan', 'Henry', 'Zachary', 'Douglas', 'Peter', 'Kyle',
  'Noah', 'Ethan', 'Jeremy', 'Walter', 'Christian', 'Keith', 'Roger', 'Terry', 'Austin', 'Sean',
  'Gerald', 'Carl', 'Harold', 'Dylan', 'Arthur', 'Lawrence', 'Jordan', 'Jesse', 'Bryan', 'Billy',
  'Bruce', 'Gabriel', 'Joe', 'Logan', 'Alan', 'Juan', 'Albert', 'Willie', 'Elijah', 'Wayne',
  'Randy', 'Vincent', 'Mason', 'Roy', 'Ralph', 'Bobby', 'Russell', 'Bradley', 'Philip', 'Eugene',
];
const FEMALE = [
  'Mary', 'Patricia', 'Jennifer', 'Linda', 'Elizabeth', 'Barbara', 'Susan', 'Jessica', 'Karen', 'Sarah',
  'Lisa', 'Nancy', 'Sandra', 'Betty', 'Ashley', 'Emily', 'Donna', 'Margaret', 'Carol', 'Michelle',
  'Kimberly', 'Amanda', 'Melissa', 'Deborah', 'Stephanie', 'Rebecca', 'Sharon', 'Laura', 'Cynthia', 'Dorothy',
  'Amy', 'Kathleen', 'Angela', 'Shirley', 'Emma', 'Brenda', 'Pamela', 'Nicole', 'Anna', 'Samantha',
  'Katherine', 'Christine', 'Debra', 'Rachel', 'Carolyn', 'Janet', 'Maria', 'Olivia', 'Heather', 'Helen',
  'Catherine', 'Diane', 'Julie', 'Victoria', 'Joyce', 'Lauren', 'Kelly', 'Christina', 'Ruth', 'Joan',
  'Virginia', 'Judith', 'Evelyn', 'Hannah', 'Andrea', 'Megan', 'Cheryl', 'Jacqueline', 'Madison', 'Teresa',
  'Abigail', 'Sophia', 'Martha', 'Sara', 'Gloria', 'Janice', 'Kathryn', 'Ann', 'Isabella', 'Judy',
  'Charlotte', 'Julia', 'Grace', 'Amber', 'Alice', 'Jean', 'Denise', 'Frances', 'Danielle', 'Marilyn',
  'Natalie', 'Beverly', 'Diana', 'Brittany', 'Theresa', 'Kayla', 'Alexis', 'Doris', 'Lori', 'Tiffany',
];
const FAMILY = [
  'Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller', 'Davis', 'Rodriguez', 'Martinez',
  'Hernandez', 'Lopez', 'Gonzalez', 'Wilson', 'Anderson', 'Thomas', 'Taylor', 'Moore', 'Jackson', 'Martin',
  'Lee', 'Perez', 'Thompson', 'White', 'Harris', 'Sanchez', 'Clark', 'Ramirez', 'Lewis', 'Robinson',
  'Walker', 'Young', 'Allen', 'King', 'Wright', 'Scott', 'Torres', 'Nguyen', 'Hill', 'Flores',
  'Green', 'Adams', 'Nelson', 'Baker', 'Hall', 'Rivera', 'Campbell', 'Mitchell', 'Carter', 'Roberts',
  'Gomez', 'Phillips', 'Evans', 'Turner', 'Diaz', 'Parker', 'Cruz', 'Edwards', 'Collins', 'Reyes',
  'Stewart', 'Morris', 'Morales', 'Murphy', 'Cook', 'Rogers', 'Gutierrez', 'Ortiz', 'Morgan', 'Cooper',
  'Peterson', 'Bailey', 'Reed', 'Kelly', 'Howard', 'Ramos', 'Kim', 'Cox', 'Ward', 'Richardson',
  'Watson', 'Brooks', 'Chavez', 'Wood', 'James', 'Bennett', 'Gray', 'Mendoza', 'Ruiz', 'Hughes',
  'Price', 'Alvarez', 'Castillo', 'Sanders', 'Patel', 'Myers', 'Long', 'Ross', 'Foster', 'Jimenez',
  "O'Brien", 'Nuñez', 'Smith-Jones', 'McDonald', 'Van der Berg', 'St. Clair', 'Díaz', 'Kowalski', 'Schmidt', 'Okafor',
];
const STREETS = ['Maple', 'Oak', 'Pine', 'Cedar', 'Elm', 'Walnut', 'Sample', 'Example', 'Test', 'Placeholder', 'Fictional', 'Synthetic'];
const STREET_TYPES = ['St', 'Ave', 'Rd', 'Ln', 'Way', 'Ct', 'Blvd'];
const CITIES: [string, string, string][] = [
  ['Springfield', 'IL', '627'],
  ['Fairview', 'TX', '750'],
  ['Riverside', 'CA', '925'],
  ['Franklin', 'TN', '370'],
  ['Greenville', 'SC', '296'],
  ['Madison', 'WI', '537'],
  ['Clinton', 'IA', '527'],
  ['Georgetown', 'KY', '403'],
  ['Salem', 'OR', '973'],
  ['Arlington', 'VA', '222'],
  ['Ashland', 'OH', '448'],
  ['Dover', 'DE', '199'],
];
const SUFFIXES = ['Jr', 'Sr', 'II', 'III'];
const PLANS = ['B37FC', 'PPO500', 'HMO250', 'HDHP3K', 'EPO1K'];

export interface SyntheticRosterResult {
  rows: number;
  bytes: number;
}

function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/**
 * Writes `rows` members (one row each, plus the header) to `filePath`, deterministic for a seed. Streams
 * (respecting back-pressure), so any size fits in constant memory.
 */
export async function writeSyntheticRoster(filePath: string, rows: number, seed = 1): Promise<SyntheticRosterResult> {
  const random = seededRandom(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const int = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));
  const date = (fromYear: number, toYear: number) => {
    const year = int(fromYear, toYear);
    const month = int(1, 12);
    const day = int(1, new Date(Date.UTC(year, month, 0)).getUTCDate());
    return `${year}-${pad(month, 2)}-${pad(day, 2)}`;
  };

  const out = createWriteStream(filePath);
  let bytes = 0;
  let buffer = '';
  const write = async (line: string) => {
    buffer += line + '\n';
    if (buffer.length >= 64 * 1024) {
      bytes += Buffer.byteLength(buffer);
      const ok = out.write(buffer);
      buffer = '';
      if (!ok) await once(out, 'drain');
    }
  };

  await write(ROSTER_CSV_COLUMNS.join(','));
  let written = 0;
  let household = 0;
  while (written < rows) {
    household++;
    const size = Math.min(rows - written, pick([1, 1, 1, 2, 2, 3, 4, 4, 5]));
    const family = pick(FAMILY);
    const [city, state, zip] = pick(CITIES);
    const address = `${int(1, 9999)} ${pick(STREETS)} ${pick(STREET_TYPES)}`;
    const postal = `${zip}${pad(int(0, 99), 2)}`;
    const subscriberId = `S${pad(household, 8)}`;
    const coverageId = `C${pad(household, 8)}`;
    const group = `G${pad(int(1, 500), 4)}`;
    const plan = pick(PLANS);
    const periodStart = date(2015, 2024);
    const periodEnd = random() < 0.5 ? '' : `${Number(periodStart.slice(0, 4)) + 1}${periodStart.slice(4, 10)}`.replace(/-02-29$/, '-02-28');
    const used = new Set<string>();
    const subscriberGender = random() < 0.5 ? 'male' : 'female';
    const twins = size >= 4 && random() < 0.3;
    let childBirth = '';

    for (let k = 0; k < size; k++) {
      const relationship = k === 0 ? 'self' : k === 1 ? 'spouse' : 'child';
      const gender = k === 0 ? subscriberGender : k === 1 ? (subscriberGender === 'male' ? 'female' : 'male') : random() < 0.5 ? 'male' : 'female';
      let given: string;
      do given = pick(gender === 'male' ? MALE : FEMALE);
      while (used.has(given));
      used.add(given);
      const middle = random() < 0.4 ? pick(gender === 'male' ? MALE : FEMALE) : '';
      let birth: string;
      if (relationship === 'child') {
        birth = twins && k === 3 ? childBirth : date(2000, 2023);
        childBirth = birth;
      } else {
        birth = date(1940, 1999);
      }
      const suffix = gender === 'male' && random() < 0.03 ? pick(SUFFIXES) : '';
      const memberId = `M${pad(seed % 1000, 3)}${pad(written + 1, 9)}`;
      const phone = random() < 0.7 ? `555-${pad(int(100, 999), 3)}-${pad(int(0, 9999), 4)}` : '';
      const email = random() < 0.3 ? `member${written + 1}@example.com` : '';
      const values: Record<(typeof ROSTER_CSV_COLUMNS)[number], string> = {
        member_id: memberId,
        subscriber_id: subscriberId,
        relationship,
        given,
        middle,
        family,
        suffix,
        birth_date: birth,
        gender,
        address_line: address,
        city,
        state,
        postal_code: postal,
        phone,
        email,
        coverage_id: coverageId,
        group,
        plan,
        period_start: periodStart,
        period_end: periodEnd,
      };
      await write(ROSTER_CSV_COLUMNS.map((c) => csvField(values[c])).join(','));
      written++;
    }
  }
  if (buffer) {
    bytes += Buffer.byteLength(buffer);
    out.write(buffer);
  }
  out.end();
  await once(out, 'finish');
  return { rows, bytes };
}
