import { createHmac } from 'node:crypto';
import { consentResourceHash } from '../consent/hrex-consent.js';
import type { Consent, Identifier } from 'fhir/r4.js';
import { canonicalJson } from '../shared/canonical-json.js';
import type { NormalizedPerson } from '../matching/record.js';

/**
 * Which request this is, for finding its review case again: a keyed hash of the normalised demographics, the
 * card identifiers, the partner's own coverage and the consent — the same person asked about the same way.
 * Single matches, bulk matches and roster reconciliations all key their cases with it, so a person already
 * with a reviewer is found again whichever way they are asked about.
 */
export function reviewRequestKey(
  key: string,
  normalized: NormalizedPerson,
  asked: { cards: readonly string[]; subscriberId?: string | undefined; coverageToLink?: Identifier[] | undefined; consent?: Consent | undefined },
): string {
  const { identifiers: _identifiers, ...person } = normalized;
  const material = canonicalJson({
    person,
    cards: [...asked.cards].sort(),
    subscriberId: asked.subscriberId ?? null,
    coverageToLink: asked.coverageToLink ?? null,
    consent: asked.consent ? consentResourceHash(asked.consent) : null,
  });
  return createHmac('sha256', key).update(material).digest('base64url');
}
