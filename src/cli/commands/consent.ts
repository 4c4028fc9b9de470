import { InvalidArgumentError, type Command } from 'commander';
import { appendAuditEvent } from '../../audit/audit-trail.js';
import { clearOptOut, listOptOuts, recordOptOut } from '../../consent/opt-out-registry.js';
import type { Tx } from '../../db/database.js';
import { findMemberSummaryByMemberId } from '../../members/member-index.js';
import { printTable } from '../output.js';
import { withDb } from './common.js';

/** Changes a member's registry entry and writes its audit event in one transaction. */
async function changeOptOut(memberId: string, change: (trx: Tx, memberUuid: string) => Promise<string>): Promise<void> {
  await withDb(async (db) => {
    const member = await findMemberSummaryByMemberId(db, memberId);
    if (!member) throw new InvalidArgumentError('no member with that member id');
    const reasonCode = await db.transaction().execute(async (trx) => {
      const reason = await change(trx, member.id);
      await appendAuditEvent(trx, { operation: 'consent-registry', outcome: 'success', reasonCode: reason, memberRef: member.id, details: { source: 'cli' } });
      return reason;
    });
    console.log(reasonCode);
  });
}

export function registerConsentCommands(program: Command): void {
  const consent = program.command('consent').description("the consent registry: members' own opt-outs, which override any partner consent");
  consent
    .command('opt-out')
    .argument('<member-id>')
    .option('--revoke', 'record a revocation of a consent the member gave, rather than an opt-out')
    .description('stop all payer-to-payer disclosure for a member: matches answer 422 member-opted-out, reads 404')
    .action((memberId: string, options: { revoke?: boolean }) =>
      changeOptOut(memberId, async (trx, uuid) => {
        const status = options.revoke ? 'revoked' : 'opted-out';
        await recordOptOut(trx, uuid, status, 'cli');
        return status;
      }),
    );
  consent
    .command('opt-in')
    .argument('<member-id>')
    .description("remove a member's opt-out or revocation")
    .action((memberId: string) => changeOptOut(memberId, async (trx, uuid) => ((await clearOptOut(trx, uuid)) ? 'opted-in' : 'unchanged')));
  consent
    .command('list')
    .description('members who opted out or revoked, newest first')
    .action(() =>
      withDb(async (db) => {
        printTable(['MEMBER ID', 'STATUS', 'SOURCE', 'RECORDED'], (await listOptOuts(db)).map((row) => [row.member_id, row.status, row.source, row.recorded_at]));
      }),
    );
}
