// TEMP re-export for reserved importers (test/roster-csv.property.test.ts): the NDJSON reader lives in
// ./roster-format/ndjson-reader.ts.
export { parseNdjsonRosterLine, readLines } from './roster-format/ndjson-reader.js';
