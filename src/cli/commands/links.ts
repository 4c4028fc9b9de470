import { InvalidArgumentError, type Command } from 'commander';
import { apiCall } from '../http.js';
import { printTable } from '../output.js';
import { choiceOption, intInRange, positiveInt, STAFF_TOKEN_HINT, staffApi, staffApiOptions, systemValueOption } from './common.js';

/**
 * `member-match links …`: partners' member links and the consents they stand on, through the staff API
 * (/admin/links), like HAPI MDM's link operations. Revoking is a supervisor's; the partner's Patient read and
 * search of that member end at once, and the revocation is audited with the supervisor's name.
 */

/** A link as GET /admin/links answers it (the columns listed). */
interface LinkJson {
  linkId: string;
  status: string;
  memberId: string;
  partnerClientId: string;
  partnerOrganization: string;
  createdAt: string;
  revokedBy: string | null;
  consent: { policyUri: string; periodEnd: string };
}

const LINK_STATUSES = ['active', 'revoked', 'member-opted-out', 'consent-expired', 'consent-not-yet-valid'] as const;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const linkId = (text: string) => {
  if (!UUID.test(text)) throw new InvalidArgumentError('expected a link id (a UUID, as `links list` shows)');
  return text.toLowerCase();
};

export function registerLinksCommands(program: Command): void {
  const links = program.command('links').description("partners' member links and their consents (a staff token; revoking needs a supervisor)");

  staffApiOptions(
    links
      .command('list')
      .description('member links, newest first, with their consent and status')
      .option('--partner <system|value>', "the partner organisation's identifier", systemValueOption)
      .option('--client <client-id>', 'the partner client that matched')
      .option('--member <member-id>', 'our member id')
      .addOption(choiceOption('--status <status>', 'only links with this status', LINK_STATUSES))
      .option('--limit <n>', 'how many (1-500)', intInRange(1, 500), 50)
      .option('--offset <n>', 'skip this many (the next page)', positiveInt, 0)
      .option('--json', 'print the links as JSON'),
  ).action(
    async (options: {
      base?: string;
      token?: string;
      partner?: { system: string; value: string };
      client?: string;
      member?: string;
      status?: string;
      limit: number;
      offset: number;
      json?: boolean;
    }) => {
      const { base, token } = staffApi(options);
      const query = new URLSearchParams({ limit: String(options.limit), offset: String(options.offset) });
      if (options.partner) query.set('partner', `${options.partner.system}|${options.partner.value}`);
      if (options.client) query.set('client', options.client);
      if (options.member) query.set('member', options.member);
      if (options.status) query.set('status', options.status);
      const { body } = await apiCall(base, token, 'GET', `/admin/links?${query}`, { tokenHint: STAFF_TOKEN_HINT });
      if (options.json) return console.log(JSON.stringify(body, null, 2));
      printTable(
        ['LINK', 'STATUS', 'MEMBER', 'PARTNER CLIENT', 'PARTNER ORGANISATION', 'CONSENT POLICY', 'CONSENT UNTIL', 'LINKED', 'REVOKED BY'],
        (body as LinkJson[]).map((l) => [l.linkId, l.status, l.memberId, l.partnerClientId, l.partnerOrganization, l.consent.policyUri, l.consent.periodEnd, l.createdAt, l.revokedBy]),
      );
    },
  );

  staffApiOptions(
    links
      .command('revoke')
      .argument('<link-id>', 'the link (as `links list` shows)', linkId)
      .requiredOption('--reason <text>', 'why (kept in the audit trail)')
      .description("revoke a link (supervisor): the partner's Patient read and search of the member end at once"),
  ).action(async (id: string, options: { base?: string; token?: string; reason: string }) => {
    const { base, token } = staffApi(options);
    const { body } = await apiCall(base, token, 'POST', `/admin/links/${id}/revoke`, { body: { reason: options.reason }, tokenHint: STAFF_TOKEN_HINT });
    console.log(`revoked ${body.linkId} (member ${body.memberId}, partner ${body.partnerClientId})`);
  });
}
