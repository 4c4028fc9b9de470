import type { CapabilityStatement } from 'fhir/r4.js';
import type { Config } from '../config.js';

export const MEMBER_MATCH_DEFINITION = 'http://hl7.org/fhir/us/davinci-hrex/OperationDefinition/member-match';
export const BULK_MEMBER_MATCH_DEFINITION = 'http://hl7.org/fhir/us/davinci-pdex/OperationDefinition/BulkMemberMatch';

export function capabilityStatement(config: Config, softwareVersion: string): CapabilityStatement {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: '2026-11-23',
    kind: 'instance',
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'application/json'],
    software: { name: 'member-match', version: softwareVersion },
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
