import { readFileSync } from 'node:fs';
import { projectFile } from '../../src/project-files.js';
import {
  ACCENTED,
  CITIES,
  FEMALE_CLASSIC,
  FEMALE_MODERN,
  FEMALE_SPANISH,
  HISPANIC_SURNAMES,
  MALE_CLASSIC,
  MALE_MODERN,
  MALE_SPANISH,
  STREET_NAMES,
  STREET_SUFFIXES,
  SURNAME_HEAD,
  SURNAME_TAIL_RANKED,
} from './name-data.js';
import { createRng, shuffle, weightedSampler, type Rng, type WeightedSampler } from './random.js';

/**
 * Samplers over the embedded name and place lists. Built lazily once per process: the lists are the same for
 * every seed, so the "universe" of names is fixed and only the draws depend on the seed.
 */

export type Sex = 'male' | 'female';

/** Words of a list block; underscores stand for spaces inside one name (De La Cruz, Country Club). */
function words(block: string): string[] {
  return block
    .split(/\s+/)
    .filter(Boolean)
    .map((w) => w.replace(/_/g, ' '));
}

const CASE_EXCEPTIONS: Record<string, string> = {
  MACDONALD: 'MacDonald',
  MACKENZIE: 'MacKenzie',
  DESANTIS: 'DeSantis',
  DELUCA: 'DeLuca',
  DELEON: 'DeLeon',
  DEJESUS: 'DeJesus',
  DELACRUZ: 'DelaCruz',
  LEBLANC: 'LeBlanc',
};

/** `O'BRIEN` → `O'Brien`, `MCDONALD` → `McDonald`, `DE LA CRUZ` → `De La Cruz`, `WINSTON-SALEM` → `Winston-Salem`. */
export function properCase(upper: string): string {
  const exception = CASE_EXCEPTIONS[upper];
  if (exception) return exception;
  return upper
    .toLowerCase()
    .replace(/(^|[\s'\-.])(\p{L})/gu, (_, sep: string, letter: string) => sep + letter.toUpperCase())
    .replace(/^Mc(\p{L})/u, (_, letter: string) => `Mc${letter.toUpperCase()}`);
}

/** Letters-only upper-case key, accents removed: the lookup key of the accent table. */
export function plainKey(name: string): string {
  return name
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .toUpperCase()
    .replace(/[^A-Z ]/g, '')
    .replace(/ /g, '_');
}

export function hasDiacritics(name: string): boolean {
  return name.normalize('NFKD') !== name;
}

export function stripDiacritics(name: string): string {
  return name.normalize('NFKD').replace(/\p{M}+/gu, '').normalize('NFC');
}

/** The accented spelling of a name, if it has a usual one (Jose → José, Nunez → Núñez). */
export function accentedForm(name: string): string | undefined {
  if (hasDiacritics(name)) return undefined;
  return ACCENTED[plainKey(name)];
}

export interface SurnameEntry {
  name: string;
  hispanic: boolean;
}

/** Zipf–Mandelbrot weight for a rank: close enough to the given-name curves of the Census and SSA. */
function rankWeight(rank: number, offset = 8, exponent = 1.1): number {
  return 1 / Math.pow(rank + offset, exponent);
}

/**
 * A long tail of plausible surnames, built by joining syllables in a few European patterns. Deterministic
 * (a fixed internal seed), so every seed sees the same names. Real rosters have tens of thousands of rare
 * surnames; without a tail, 1M synthetic members would share too few names and every query would look
 * ambiguous.
 */
function syntheticSurnames(exclude: Set<string>): string[] {
  const anglo1 = words(`ASH AL BAR BEL BEN BING BLACK BLAND BOL BRAD BRAN BROM BUR CAL CART CHAD COR CRAN DAL DAR
    DEN DOR DUN ED EL EM FAR FEN FIN GAR GIL GLAD GOLD GOR GRIM HAL HAM HAR HATH HEL HOL HUX ING KEL KEN KIN KIRK LAM
    LANG LAR LIND LOCK MAR MEL MER MIL MOR NOR OAK OL PEM PEN PRES RAD RAL REN ROCK ROS RUD SAL SEL SHEL STAN STOCK
    SUM TAL TEM THORN TOD TRE WAL WAR WEL WEN WHIT WIL WIN WOLF WOOD YAR ASH BROOK CROW DRAY FAIR GREN HAD HOLL KNOW
    LAW MAD NEW PIT QUIN RED SHEP STRAT SWIN THACK TWIS WAD WEST WORTH`);
  const anglo2 = words(`FORD LEY TON WELL BY MAN SON ER INGTON WOOD FIELD WORTH STEAD MOND BURY MORE LAND RIDGE DALE
    WICK COMBE HURST BROOK NEY NELL DEN DON STONE GATE CROFT SHAW ERS EY HAM ING LOW SLEY TER TREE WAY WARD BANK BECK
    CLIFF COTT FELL GROVE HOLM HOPE LOCK MERE MOOR PORT ROW STOW THWAITE WELL`);
  const stems = words(`BER BRAN CAR COST DEL FAL FER GAL GIOR LOM MAL MAR MON NAR PAL PAR RAN ROS SAL SAN TAR VAL
    VEN ZAN BELL CAP FIOR GRAZ LUC MAZ PIC RIC SPAD TOR VIT ALB BON CRIS DON FAB LOR MIC PET SIM`);
  const italian = words('ELLI INI ETTI ONE ANO UCCI ARO IERI OTTA ACCI');
  const slavic = words('OWSKI EWSKI ICKI ENKO OVICH EVICH CZAK IAK ECK INSKI');
  const germanic = words('BERG MANN LER NER STEIN HAUS FELD HOFF BACH BAUM DORF');
  const hispanic = words('EZ ADO EDA ERO ILLA ARES ENO OSA ALES');

  const out = new Set<string>();
  const add = (name: string) => {
    if (name.length >= 4 && name.length <= 14 && !exclude.has(name)) out.add(name);
  };
  // A linking syllable multiplies the combinations (Ash-en-ford, Bar-ing-ton) while keeping them pronounceable.
  for (const link of ['', 'EN', 'ER', 'IN']) {
    for (const a of anglo1) {
      for (const b of anglo2) {
        if (link && (/[AEIOUY]$/.test(a) || /^[AEIOUY]/.test(b))) continue;
        add(a + link + b);
      }
    }
  }
  for (const s of stems) {
    for (const e of italian) add(s + e);
    for (const e of slavic) add(s + e);
    for (const e of germanic) add(s + e);
    for (const e of hispanic) add(s + e);
  }
  for (const a of anglo1) add(`MC${a}`);
  const rng = createRng('surname-tail-v1');
  return shuffle(rng, [...out].sort());
}

interface NameTables {
  surnames: WeightedSampler<SurnameEntry>;
  surnameCount: number;
  hispanicSurnames: WeightedSampler<SurnameEntry>;
  given: Record<Sex, { classic: WeightedSampler<string>; modern: WeightedSampler<string>; spanish: WeightedSampler<string> }>;
  cities: WeightedSampler<(typeof CITIES)[number]>;
  streets: string[];
  streetSuffixes: WeightedSampler<string>;
  nicknames: Map<string, Record<Sex, WeightedSampler<string>>>;
}

let tables: NameTables | undefined;

function givenSampler(block: string): WeightedSampler<string> {
  const names = [...new Set(words(block))].map(properCase);
  return weightedSampler(
    names,
    names.map((_, i) => rankWeight(i + 1)),
  );
}

/**
 * Nickname table from fixtures/nicknames.csv: full name (lower case) → its nicknames, proper-cased, with a
 * sampler per sex of the bearer.
 */
function loadNicknames(known: Record<Sex, Set<string>>): Map<string, Record<Sex, WeightedSampler<string>>> {
  const text = readFileSync(projectFile('fixtures', 'nicknames.csv'), 'utf8');
  const byName = new Map<string, string[]>();
  for (const line of text.split(/\r?\n/)) {
    const [name1, relationship, name2] = line.split(',').map((c) => c.trim().toLowerCase());
    if (relationship !== 'has_nickname' || !name1 || !name2 || name1 === name2) continue;
    const list = byName.get(name1) ?? [];
    list.push(name2);
    byName.set(name1, list);
  }
  const result = new Map<string, Record<Sex, WeightedSampler<string>>>();
  for (const [name, list] of byName) {
    const nicknames = list.map((n) => properCase(n.toUpperCase()));
    // The table lists archaic forms too (Robert → Dobbin, Hob). Nicknames that people actually go by appear in
    // the Census given-name lists for their sex (Bob, Bill, Jim; Peggy, Liz) and are far more likely in a
    // partner's record; a man is rarely recorded under a girl's name from the table (Paul → Polly).
    const sampler = (sex: Sex) =>
      weightedSampler(
        nicknames,
        nicknames.map((n) => (known[sex].has(n.toUpperCase()) ? 8 : 1)),
      );
    result.set(name, { male: sampler('male'), female: sampler('female') });
  }
  return result;
}

export function nameTables(): NameTables {
  if (tables) return tables;

  const hispanicSet = new Set(words(HISPANIC_SURNAMES));
  const entries: SurnameEntry[] = [];
  const weights: number[] = [];
  const seen = new Set<string>();
  const head = words(SURNAME_HEAD);
  for (let i = 0; i + 1 < head.length; i += 2) {
    const upper = head[i] as string;
    seen.add(upper);
    entries.push({ name: properCase(upper), hispanic: hispanicSet.has(upper) });
    weights.push(Number(head[i + 1]));
  }
  // Ranks past 100: a power law fitted to the 2010 Census counts (rank 100 ≈ 226k, rank 1000 ≈ 13k).
  let rank = 100;
  for (const upper of words(SURNAME_TAIL_RANKED)) {
    if (seen.has(upper)) continue;
    seen.add(upper);
    rank++;
    entries.push({ name: properCase(upper), hispanic: hispanicSet.has(upper) });
    weights.push(226_335 * Math.pow(rank / 100, -1.2));
  }
  const realCount = entries.length;
  const realMass = weights.reduce((a, b) => a + b, 0);
  // The synthetic tail carries 1.6 times the mass of the real list: in the Census the 1,000 most frequent
  // surnames cover about 40 % of people (SMITH alone about 0.8-1 %), the other 60 % spread over 150,000 names. Within the tail the curve keeps
  // falling with rank (exponent 0.9, Census ranks 1,000–100,000), so its first names still collide often.
  const tail = syntheticSurnames(seen);
  const tailRaw = tail.map((_, i) => Math.pow(i + 1 + 1000, -0.9));
  const tailScale = (1.6 * realMass) / tailRaw.reduce((a, b) => a + b, 0);
  for (const [i, upper] of tail.entries()) {
    entries.push({ name: properCase(upper), hispanic: /(EZ|ADO|EDA|ERO|ILLA|ARES|ENO|OSA|ALES)$/.test(upper) });
    weights.push((tailRaw[i] as number) * tailScale);
  }

  const hispanicEntries = entries.slice(0, realCount).filter((e) => e.hispanic);
  const hispanicWeights = entries
    .slice(0, realCount)
    .map((e, i) => (e.hispanic ? (weights[i] as number) : -1))
    .filter((w) => w >= 0);

  const given = {
    male: { classic: givenSampler(MALE_CLASSIC), modern: givenSampler(MALE_MODERN), spanish: givenSampler(MALE_SPANISH) },
    female: {
      classic: givenSampler(FEMALE_CLASSIC),
      modern: givenSampler(FEMALE_MODERN),
      spanish: givenSampler(FEMALE_SPANISH),
    },
  };
  const givenBySex: Record<Sex, Set<string>> = {
    male: new Set([MALE_CLASSIC, MALE_MODERN, MALE_SPANISH].flatMap(words)),
    female: new Set([FEMALE_CLASSIC, FEMALE_MODERN, FEMALE_SPANISH].flatMap(words)),
  };

  tables = {
    surnames: weightedSampler(entries, weights),
    surnameCount: entries.length,
    hispanicSurnames: weightedSampler(hispanicEntries, hispanicWeights),
    given,
    cities: weightedSampler(
      CITIES,
      CITIES.map((c) => c[4]),
    ),
    streets: words(STREET_NAMES),
    streetSuffixes: weightedSampler(
      STREET_SUFFIXES.map((s) => s[0]),
      STREET_SUFFIXES.map((s) => s[1]),
    ),
    nicknames: loadNicknames(givenBySex),
  };
  return tables;
}

/**
 * A given name for someone of this sex born in this year. Names follow their era: people born before 1985
 * draw from the 1990 Census list, after 2000 from SSA ranks, in between a blend. Hispanic households use the
 * Spanish list about half the time.
 */
export function drawGivenName(rng: Rng, sex: Sex, birthYear: number, hispanic: boolean): string {
  const lists = nameTables().given[sex];
  if (hispanic && rng.chance(0.5)) return lists.spanish.sample(rng);
  const modernShare = Math.min(1, Math.max(0, (birthYear - 1985) / 15));
  return (rng.chance(modernShare) ? lists.modern : lists.classic).sample(rng);
}

export function drawSurname(rng: Rng): SurnameEntry {
  return nameTables().surnames.sample(rng);
}

export function drawHispanicSurname(rng: Rng): SurnameEntry {
  return nameTables().hispanicSurnames.sample(rng);
}

/** A nickname for a given name (William → Bill), or undefined when the table has none. */
export function drawNickname(rng: Rng, given: string, sex: Sex): string | undefined {
  const sampler = nameTables().nicknames.get(stripDiacritics(given).toLowerCase())?.[sex];
  if (!sampler) return undefined;
  for (let i = 0; i < 4; i++) {
    const nickname = sampler.sample(rng);
    if (nickname.toLowerCase() !== given.toLowerCase()) return nickname;
  }
  return undefined;
}

export function hasNickname(given: string): boolean {
  return nameTables().nicknames.has(stripDiacritics(given).toLowerCase());
}
