// Executes GraphQL requests with the exported AppSync resolvers and prints the answers.
//   node run.mjs EXPORT_DIR CONFIG_JSON < requests.json > answers.json
// requests.json: [{"query": "...", "variables": {...}, "auth": {"type", "identity"}}, ...]
//   "auth": the caller, as util.authType() and ctx.identity give it (default: the API key);
//   "subscription" operations give the resolver's enhanced filter; "paginate": FIELD runs the
//   query page after page, passing data[FIELD].nextToken back as $token, and answers the list
//   of pages; "trace": true adds the data sources it called to the answer (as "dataSources").
// CONFIG_JSON: {"endpoint", "region", "accessKeyId", "databaseUrl", "env": {...},
//   "dataSources": {"Projections": {"table"}, ...}}.
import { readFileSync } from 'node:fs';

import { AppSync } from './appsync.mjs';

const [exportDir, configPath] = process.argv.slice(2);
if (!exportDir || !configPath) {
  console.error('usage: node run.mjs EXPORT_DIR CONFIG_JSON < requests.json');
  process.exit(2);
}
const config = JSON.parse(readFileSync(configPath, 'utf8'));
const requests = JSON.parse(readFileSync(0, 'utf8'));
const appsync = new AppSync({ exportDir, config });
const MAX_PAGES = 100;

async function pages(request) {
  const answers = [];
  let token = null;
  for (const _ of Array(MAX_PAGES).keys()) {
    const variables = { ...request.variables, token };
    const answer = await appsync.execute(request.query, variables, request.auth);
    answers.push(answer);
    token = answer.data?.[request.paginate]?.nextToken ?? null;
    if (!token) return answers;
  }
  throw new Error(`more than ${MAX_PAGES} pages of ${request.paginate}`);
}
try {
  const answers = [];
  for (const request of requests) {
    let answer;
    if (request.query.trimStart().startsWith('subscription')) {
      answer = await appsync.subscribe(request.query, request.variables, request.auth);
    } else if (request.paginate) {
      answer = await pages(request);
    } else {
      answer = await appsync.execute(request.query, request.variables, request.auth);
    }
    const calls = appsync.takeCalls();
    answers.push(request.trace ? { ...answer, dataSources: calls } : answer);
  }
  process.stdout.write(JSON.stringify(answers) + '\n');
} finally {
  appsync.close();
}
