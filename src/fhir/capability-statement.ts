import type { CapabilityStatement } from 'fhir/r4.js';
import { statSync } from 'node:fs';
import type { Config } from '../config.js';
import { projectFile } from '../project-files.js';

export const MEMBER_MATCH_DEFINITION = 'http://hl7.org/fhir/us/davinci-hrex/OperationDefinition/member-match';
export const BULK_MEMBER_MATCH_DEFINITION = 'http://hl7.org/fhir/us/davinci-pdex/OperationDefinition/BulkMemberMatch';

/**
 * The statement's `date` is when this build was made, so it changes when the software (and so what it states)
 * does: SOURCE_DATE_EPOCH when the build sets it (the reproducible-builds convention), else the day
 * package.json was last written (a release bumps its version there; an image copies it at build time).
 */
export function releaseDate(env: NodeJS.ProcessEnv = process.env): string {
  const epoch = Number(env.SOURCE_DATE_EPOCH);
  const when = env.SOURCE_DATE_EPOCH && Number.isFinite(epoch) ? new Date(epoch * 1000) : statSync(projectFile('package.json')).mtime;
  return when.toISOString().slice(0, 10);
}

export function capabilityStatement(config: Config, softwareVersion: string, date = releaseDate()): CapabilityStatement {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date,
    kind: 'instance',
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'application/json'],
    software: { name: 'member-match', version: softwareVersion, releaseDate: date },
    implementation: { description: 'Payer-to-payer member match (disclosing payer)', url: config.fhirBaseUrl },
    instantiates: ['http://hl7.org/fhir/us/davinci-hrex/CapabilityStatement/hrex-server'],
    rest: [
      {
        mode: 'server',
        security: {
          service: [
            {
              coding: [
                { system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' },
              ],
            },
          ],
          description: 'SMART Backend Services (client_credentials with private_key_jwt, RS384 or ES384).',
          extension: [
            {
              url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
              extension: [{ url: 'token', valueUri: config.tokenUrl }],
            },
          ],
        },
        resource: [
          {
            type: 'Patient',
            interaction: [{ code: 'read' }, { code: 'search-type' }],
            searchParam: [{ name: 'identifier', type: 'token' }],
            operation: [{ name: 'member-match', definition: MEMBER_MATCH_DEFINITION }],
          },
          {
            type: 'Group',
            operation: [{ name: 'bulk-member-match', definition: BULK_MEMBER_MATCH_DEFINITION }],
          },
        ],
      },
    ],
  };
}
