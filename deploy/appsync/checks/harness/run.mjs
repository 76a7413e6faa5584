// Executes GraphQL requests with the exported AppSync resolvers and prints the answers.
//   node run.mjs EXPORT_DIR CONFIG_JSON < requests.json > answers.json
// requests.json: [{"query": "...", "variables": {...}}, ...] ("subscription" operations give
// the resolver's enhanced filter; "paginate": FIELD runs the query page after page, passing
// data[FIELD].nextToken back as $token, and answers the list of pages). CONFIG_JSON: {"endpoint", "region", "accessKeyId",
// "databaseUrl", "env": {...}, "dataSources": {"Projections": {"table"}, ...}}.
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
    const answer = await appsync.execute(request.query, { ...request.variables, token });
    answers.push(answer);
    token = answer.data?.[request.paginate]?.nextToken ?? null;
    if (!token) return answers;
  }
  throw new Error(`more than ${MAX_PAGES} pages of ${request.paginate}`);
}
try {
  const answers = [];
  for (const request of requests) {
    if (request.query.trimStart().startsWith('subscription')) {
      answers.push(await appsync.subscribe(request.query, request.variables));
    } else if (request.paginate) {
      answers.push(await pages(request));
    } else {
      answers.push(await appsync.execute(request.query, request.variables));
    }
  }
  process.stdout.write(JSON.stringify(answers) + '\n');
} finally {
  appsync.close();
}
