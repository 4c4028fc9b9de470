/** An identifier written `system|value`, the FHIR token-search form. */
export interface SystemValue {
  system: string;
  value: string;
}

export function parseSystemValue(text: string): SystemValue | undefined {
  const bar = text.lastIndexOf('|');
  if (bar <= 0 || bar === text.length - 1) return undefined;
  return { system: text.slice(0, bar), value: text.slice(bar + 1) };
}
