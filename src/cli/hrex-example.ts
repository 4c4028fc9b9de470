import { readFileSync } from 'node:fs';
import { projectFile } from '../project-files.js';
import type { Consent, Parameters } from 'fhir/r4.js';
import { HREX_CONSENT_POLICY_REGULAR, HREX_CONSENT_POLICY_SENSITIVE } from '../consent/hrex-consent.js';
import type { SystemValue } from '../shared/system-value.js';

const examplePath = projectFile('fixtures', 'hrex', 'parameters-member-match-in.json');

export interface ExampleOptions {
  /** The consent recipient: the partner organisation that will send the request. */
  recipient?: SystemValue;
  policy?: 'regular' | 'sensitive';
  /** Consent period; default: yesterday to a year from now. */
  periodStart?: string;
  periodEnd?: string;
}

/**
 * The HL7 HRex example `$member-match` request, with its consent moved into a current period (the published
 * one expired in January 2022) and, optionally, another recipient or policy. For demos and tests.
 */
export function hrexExampleRequest(options: ExampleOptions = {}): Parameters {
  const request = JSON.parse(readFileSync(examplePath, 'utf8')) as Parameters;
  const consent = request.parameter?.find((p) => p.name === 'Consent')?.resource as Consent;
  const provision = consent.provision!;
  const day = 86_400_000;
  provision.period = {
    start: options.periodStart ?? new Date(Date.now() - day).toISOString().slice(0, 10),
    end: options.periodEnd ?? new Date(Date.now() + 365 * day).toISOString().slice(0, 10),
  };
  if (options.policy) {
    consent.policy = [{ uri: options.policy === 'regular' ? HREX_CONSENT_POLICY_REGULAR : HREX_CONSENT_POLICY_SENSITIVE }];
  }
  if (options.recipient) {
    const recipient = provision.actor?.find((a) => a.role.coding?.some((c) => c.code === 'IRCP'));
    if (recipient) recipient.reference = { identifier: { ...options.recipient }, display: 'New Health Plan' };
  }
  return request;
}

/** The published example, untouched (consent period January 2022). */
export function hrexOriginalRequest(): Parameters {
  return JSON.parse(readFileSync(examplePath, 'utf8')) as Parameters;
}
