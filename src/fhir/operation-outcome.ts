import type { OperationOutcome } from 'fhir/r4.js';
import type { IssueType } from '../errors.js';

export type Severity = 'fatal' | 'error' | 'warning' | 'information';

export interface OutcomeIssue {
  severity?: Severity;
  code: IssueType;
  /** A stable machine-readable reason, sent as `details.coding` so clients can branch on it. */
  reason?: string;
  diagnostics: string;
  expression?: string;
}

export const REASON_SYSTEM = 'urn:member-match:outcome-reason';

export function operationOutcome(...issues: OutcomeIssue[]): OperationOutcome {
  return {
    resourceType: 'OperationOutcome',
    issue: issues.map((issue) => ({
      severity: issue.severity ?? 'error',
      code: issue.code,
      ...(issue.reason
        ? { details: { coding: [{ system: REASON_SYSTEM, code: issue.reason }], text: issue.diagnostics } }
        : {}),
      diagnostics: issue.diagnostics,
      ...(issue.expression ? { expression: [issue.expression] } : {}),
    })),
  };
}
