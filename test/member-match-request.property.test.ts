import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hrexExampleRequest } from '../src/cli/hrex-example.js';
import { AppError, StructureError } from '../src/errors.js';
import { evaluateHrexConsent } from '../src/consent/hrex-consent.js';
import { parseMemberMatchRequest } from '../src/fhir/member-match-request.js';
import { givenNameKey, nameKey, parseIsoDate } from '../src/matching/normalize.js';

describe('parseMemberMatchRequest', () => {
  it('reads the HL7 example', () => {
    const parsed = parseMemberMatchRequest(hrexExampleRequest());
    expect(parsed).toMatchObject({ birthDate: '1974-12-25', gender: 'female', names: [{ family: 'Person', given: ['Patricia', 'Ann'] }] });
    expect(parsed.cardIdentifiers.sort()).toEqual(['55678', 'DH10001235']);
    expect(parsed.consent).toBeDefined();
    expect(parsed.coverageToLink).toBeDefined();
  });

  it('accepts the US Core birthsex extension in place of gender', () => {
    const request = hrexExampleRequest() as any;
    delete request.parameter[0].resource.gender;
    request.parameter[0].resource.extension = [{ url: 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex', valueCode: 'F' }];
    expect(parseMemberMatchRequest(request).gender).toBe('female');
  });

  it('never throws anything but a StructureError on arbitrary JSON', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        try {
          parseMemberMatchRequest(value);
        } catch (error) {
          expect(error).toBeInstanceOf(StructureError);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('never throws anything but a StructureError when parts of a valid request are replaced by junk', () => {
    const paths = [
      ['parameter'], ['parameter', 0, 'resource', 'name'], ['parameter', 0, 'resource', 'birthDate'], ['parameter', 0, 'resource', 'identifier'],
      ['parameter', 1, 'resource', 'identifier'], ['parameter', 1, 'resource', 'beneficiary'], ['parameter', 3, 'resource', 'performer'],
      ['parameter', 0, 'resource', 'name', 0, 'given'], ['parameter', 1, 'resource', 'subscriberId'], ['parameter', 2],
    ] as const;
    fc.assert(
      fc.property(fc.constantFrom(...paths), fc.jsonValue(), (path, junk) => {
        const request = hrexExampleRequest() as any;
        let target = request;
        for (const key of path.slice(0, -1)) target = target[key];
        target[path[path.length - 1]!] = junk;
        try {
          parseMemberMatchRequest(request);
        } catch (error) {
          expect(error).toBeInstanceOf(AppError);
          expect((error as AppError).status).toBe(400);
          // Messages are fixed text: nothing from the junk is echoed back (short junk can occur in the fixed text by chance).
          if (typeof junk === 'string' && junk.length > 8) expect((error as Error).message).not.toContain(junk);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('normalisers', () => {
  it('nameKey is idempotent, letters-only and case-insensitive', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        const key = nameKey(s);
        expect(key).toMatch(/^[A-Z]*$/);
        expect(nameKey(key)).toBe(key);
        expect(nameKey(s.toLowerCase())).toBe(nameKey(s.toUpperCase()));
      }),
    );
  });
  it('folds diacritics and punctuation', () => {
    expect(nameKey("O'Brien-Núñez")).toBe('OBRIENNUNEZ');
    expect(givenNameKey('  Mary   Ann ')).toBe('MARY');
  });
  it('parseIsoDate accepts exactly the real calendar dates', () => {
    fc.assert(
      fc.property(fc.date({ min: new Date('1900-01-01'), max: new Date('2100-12-31'), noInvalidDate: true }), (d) => {
        const text = d.toISOString().slice(0, 10);
        expect(parseIsoDate(text)).toBe(text);
      }),
    );
    for (const bad of ['2023-02-29', '2023-13-01', '1974-12-32', '25/12/1974', '1974-12-25T00:00:00Z', '']) expect(parseIsoDate(bad)).toBeUndefined();
  });

  it('judges any junk in a parsed Consent as a denial, never a crash', () => {
    const paths = [
      ['provision'], ['provision', 'actor'], ['provision', 'actor', 0], ['provision', 'actor', 0, 'role'],
      ['provision', 'action'], ['provision', 'period'], ['policy'], ['category'], ['scope'], ['status'],
    ] as const;
    fc.assert(
      fc.property(fc.constantFrom(...paths), fc.jsonValue(), (path, junk) => {
        const request = hrexExampleRequest() as any;
        let target = request.parameter[3].resource;
        for (const key of path.slice(0, -1)) target = target[key];
        target[path[path.length - 1]!] = junk;
        let parsed;
        try {
          parsed = parseMemberMatchRequest(request);
        } catch (error) {
          expect(error).toBeInstanceOf(AppError);
          return;
        }
        const decision = evaluateHrexConsent(parsed.consent, {
          ownOrganization: { system: 'http://hl7.org/fhir/sid/us-npi', value: '9876543210' },
          requesterOrganization: { system: 'http://hl7.org/fhir/sid/us-npi', value: '0123456789' },
          canSegmentSensitiveData: true,
          now: new Date('2026-06-01T00:00:00Z'),
        });
        expect(['permit', 'deny']).toContain(decision.decision);
      }),
      { numRuns: 500 },
    );
  });
});
