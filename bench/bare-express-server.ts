/**
 * The bare-Express baseline the benches measure in the same run as the service (bench/baseline.ts): an Express 5
 * app, in a process of its own like the service, taking the same bodies on the same paths and doing only what
 * any endpoint must — read the body and parse it — then answering a small JSON document. No auth, no database,
 * no Redis. It prints `listening <port>` on stdout once it listens (PORT, default 0 = a free port).
 *
 * - POST /fhir/Patient/$member-match, /fhir/Group/$bulk-member-match: JSON (`application/fhir+json` too), parsed;
 *   answers the number of parameters.
 * - POST /rosters: the raw body (a roster file, any size), streamed and counted by lines; answers the count.
 */
import express from 'express';

const app = express();
const json = express.json({ type: ['application/json', 'application/fhir+json'], limit: '64mb' });
app.post('/rosters', (req, res) => {
  let lines = 0;
  req.on('data', (chunk: Buffer) => {
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
  });
  req.on('end', () => res.status(200).json({ lines }));
});
app.post('/fhir/*path', json, (req, res) => {
  const body = req.body as { parameter?: unknown[] } | undefined;
  res.status(200).json({ resourceType: 'Parameters', parameters: body?.parameter?.length ?? 0 });
});

const server = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const address = server.address();
  console.log(`listening ${typeof address === 'object' && address ? address.port : ''}`);
});
server.keepAliveTimeout = 5_000;
process.on('SIGTERM', () => server.close(() => process.exit(0)));
