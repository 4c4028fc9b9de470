import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { JWK } from 'jose';
import { loadConfig } from '../../config.js';
import { disableAgent, enableAgent, listAgents, registerAgent } from '../../identity/agents.js';
import { printTable } from '../output.js';
import { signClientAssertion } from '../partner-tools.js';
import { exchangeForAgentToken } from '../workload-tools.js';
import { registerSwitch, withDb } from './common.js';

export function registerAgentCommands(program: Command): void {
  const agent = program.command('agent').description('AI or automation agents acting for a delegator (RFC 8693 delegation)');
  agent
    .command('add')
    .requiredOption('--name <name>')
    .requiredOption('--jwks <file>', "the agent's public JWKS")
    .requiredOption('--tools <scopes>', 'space-separated tool scopes the agent may ever act with')
    .description('register an agent; prints its agent id')
    .action((options: { name: string; jwks: string; tools: string }) =>
      withDb(async (db) => {
        const jwks = JSON.parse(await readFile(options.jwks, 'utf8')) as { keys: JWK[] };
        console.log((await registerAgent(db, { name: options.name, jwks, toolScopes: options.tools.split(/\s+/).filter(Boolean) })).agentId);
      }),
    );
  agent
    .command('list')
    .description('registered agents')
    .action(() =>
      withDb(async (db) => {
        printTable(['AGENT ID', 'STATE', 'NAME', 'TOOL SCOPES'], (await listAgents(db)).map((a) => [a.agentId, a.enabled ? 'enabled' : 'disabled', a.name, a.toolScopes.join(' ')]));
      }),
    );
  registerSwitch(agent, 'agent', 'disable', 'stop an agent: new delegations refused at once, its tokens within 5 s', disableAgent);
  registerSwitch(agent, 'agent', 'enable', 'enable a disabled agent again: it may take delegations at once', enableAgent);
  agent
    .command('token')
    .description("(demo) play the agent: exchange a delegator's access token (stdin or --subject-token) for a delegated token")
    .requiredOption('--agent-id <id>')
    .requiredOption('--key <file>', "the agent's private JWK")
    .option('--subject-token <token>')
    .option('--scope <scopes>')
    .option('--base <url>', 'the service base URL (default: PUBLIC_BASE_URL)')
    .action(async (options: { agentId: string; key: string; subjectToken?: string; scope?: string; base?: string }) => {
      const config = loadConfig();
      const tokenUrl = options.base ? `${options.base.replace(/\/+$/, '')}/oauth/token` : config.tokenUrl;
      const privateJwk = JSON.parse(await readFile(options.key, 'utf8')) as JWK;
      const actorToken = await signClientAssertion({ clientId: options.agentId, tokenUrl, privateJwk });
      const subjectToken = options.subjectToken ?? readFileSync(0, 'utf8').trim();
      const result = await exchangeForAgentToken(tokenUrl, subjectToken, actorToken, options.scope);
      if (result.status !== 200) {
        console.error(JSON.stringify(result.body));
        process.exitCode = 1;
        return;
      }
      console.log(result.body.access_token);
    });
}
