// TEMP re-export for reserved importers (src/batch/roster-reconcile.ts, test/roster-csv.property.test.ts): the roster
// format lives in ./roster-format/.
export { GENDER_CODES, RELATIONSHIP_CODES, ROSTER_CSV_COLUMNS, type RosterColumn, type RosterFields } from './roster-format/columns.js';
export { readRosterCsv, type CsvRosterEvent } from './roster-format/csv-reader.js';
export { RosterFileError } from './roster-format/errors.js';
export { validateRosterRow } from './roster-format/validate.js';
