/**
 * The first `limit` well-formed `$member-match` requests of an evaluation query file, each as the engine sees it:
 * the offered person normalised, and the blocking keys a query looks under. For the scripts that measure what
 * blocks cost at an index size (bench/block-sizes.ts, bench/candidate-lookup.ts); malformed requests are skipped.
 */
import { offeredPerson, parseMemberMatchRequest } from '../src/fhir/member-match-request.js';
import { queryBlockingKeys } from '../src/matching/blocking.js';
import { normalizePerson } from '../src/matching/normalize.js';
import type { NormalizedPerson } from '../src/matching/record.js';
import { readQueries } from '../tools/evaluation/files.js';

/** The service's default BLOCK_CAP (src/config.ts): the block size beyond which a block is skipped. */
export const DEFAULT_BLOCK_CAP = 1000;

export async function* queryKeys(file: string, limit: number): AsyncGenerator<{ person: NormalizedPerson; keys: string[] }> {
  let taken = 0;
  for await (const query of readQueries(file)) {
    if (taken >= limit) return;
    let request;
    try {
      request = parseMemberMatchRequest(query.parameters);
    } catch {
      continue;
    }
    taken++;
    const person = normalizePerson(offeredPerson(request));
    yield { person, keys: queryBlockingKeys(person) };
  }
}
