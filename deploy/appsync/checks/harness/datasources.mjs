// AppSync's data sources against local stand-ins: DynamoDB, Step Functions (the HTTP data
// source) and EventBridge on the local AWS endpoint (moto), the RDS Data API on PostgreSQL.
// Each takes the request object a resolver's request handler returned and answers what
// AppSync puts in ctx.result (or ctx.error), in AppSync's shapes.
import { createHash } from 'node:crypto';
import pg from 'pg';

import { fromDynamoDB, fromDynamoDBMap } from './runtime.mjs';

// moto reads the region and account from the credential scope; it checks no signature.
function awsHeaders(config, service, target, contentType) {
  const day = new Date().toISOString().slice(0, 10).replace(/-/g, '');
  return {
    'content-type': contentType,
    'x-amz-target': target,
    authorization: `AWS4-HMAC-SHA256 Credential=${config.accessKeyId}/${day}/${config.region}/` +
      `${service}/aws4_request, SignedHeaders=host, Signature=0`,
  };
}

async function awsCall(config, service, target, body, contentType = 'application/x-amz-json-1.0') {
  const response = await fetch(config.endpoint, {
    method: 'POST',
    headers: awsHeaders(config, service, target, contentType),
    body: JSON.stringify(body),
  });
  const text = await response.text();
  const answer = text ? JSON.parse(text) : {};
  if (!response.ok) {
    const code = String(answer.__type ?? 'UnknownError').split('#').pop();
    return { error: { type: `DynamoDB:${code}`, message: answer.message ?? answer.Message ?? code } };
  }
  return { data: answer };
}

// AppSync's nextToken: opaque to the client and bound to the query it came from.
function queryFingerprint(request) {
  return createHash('sha256')
    .update(JSON.stringify([request.index ?? null, request.query, request.scanIndexForward]))
    .digest('hex')
    .slice(0, 16);
}

function issueToken(request, lastEvaluatedKey) {
  const token = { q: queryFingerprint(request), k: lastEvaluatedKey };
  return Buffer.from(JSON.stringify(token)).toString('base64url');
}

function openToken(request, nextToken) {
  let token;
  try {
    token = JSON.parse(Buffer.from(nextToken, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  return token && token.q === queryFingerprint(request) ? token.k : null;
}

async function dynamodb(request, config, dataSource) {
  const table = dataSource.table;
  const call = (operation, body) =>
    awsCall(config, 'dynamodb', `DynamoDB_20120810.${operation}`, body);
  switch (request.operation) {
    case 'GetItem': {
      const answer = await call('GetItem', {
        TableName: table,
        Key: request.key,
        ConsistentRead: Boolean(request.consistentRead),
      });
      if (answer.error) return answer;
      return { data: answer.data.Item ? fromDynamoDBMap(answer.data.Item) : null };
    }
    case 'Query': {
      const body = {
        TableName: table,
        KeyConditionExpression: request.query.expression,
        ExpressionAttributeValues: request.query.expressionValues,
        ScanIndexForward: request.scanIndexForward ?? true,
        ConsistentRead: Boolean(request.consistentRead),
      };
      if (request.query.expressionNames) body.ExpressionAttributeNames = request.query.expressionNames;
      if (request.index) body.IndexName = request.index;
      if (request.limit) body.Limit = request.limit;
      if (request.nextToken) {
        const start = openToken(request, request.nextToken);
        if (!start) {
          return { error: { type: 'BadRequestException', message: 'Invalid pagination token given.' } };
        }
        body.ExclusiveStartKey = start;
      }
      const answer = await call('Query', body);
      if (answer.error) return answer;
      return {
        data: {
          items: (answer.data.Items ?? []).map(fromDynamoDBMap),
          nextToken: answer.data.LastEvaluatedKey
            ? issueToken(request, answer.data.LastEvaluatedKey)
            : null,
          scannedCount: answer.data.ScannedCount ?? 0,
        },
      };
    }
    case 'BatchGetItem': {
      const requestItems = {};
      for (const [name, spec] of Object.entries(request.tables)) {
        requestItems[name] = { Keys: spec.keys, ConsistentRead: Boolean(spec.consistentRead) };
      }
      const answer = await call('BatchGetItem', { RequestItems: requestItems });
      if (answer.error) return answer;
      // AppSync answers each table's items in the order of its keys, null where none.
      const data = {};
      for (const [name, spec] of Object.entries(request.tables)) {
        const found = (answer.data.Responses?.[name] ?? []).map(fromDynamoDBMap);
        data[name] = spec.keys.map((key) => {
          const plainKey = fromDynamoDBMap(key);
          return found.find((item) =>
            Object.entries(plainKey).every(([k, v]) => item[k] === v)) ?? null;
        });
      }
      const unprocessedKeys = {};
      for (const [name, spec] of Object.entries(answer.data.UnprocessedKeys ?? {})) {
        unprocessedKeys[name] = spec.Keys.map(fromDynamoDBMap);
      }
      return { data: { data, unprocessedKeys } };
    }
    default:
      throw new Error(`the harness does not run DynamoDB ${request.operation}`);
  }
}

async function http(request, config, dataSource) {
  const params = request.params ?? {};
  const url = new URL(request.resourcePath, dataSource.endpoint ?? config.endpoint);
  for (const [k, v] of Object.entries(params.query ?? {})) url.searchParams.set(k, v);
  // The data source signs with SigV4 for its service (here: states) and region.
  const headers = { ...(params.headers ?? {}) };
  const signed = awsHeaders(config, dataSource.signingService, '', 'application/json');
  headers.authorization = signed.authorization;
  try {
    const response = await fetch(url, { method: request.method, headers, body: params.body });
    return {
      data: {
        statusCode: response.status,
        headers: Object.fromEntries(response.headers.entries()),
        body: await response.text(),
      },
    };
  } catch (error) {
    return { error: { type: 'HttpError', message: String(error.cause ?? error) } };
  }
}

async function eventbridge(request, config, dataSource) {
  if (request.operation !== 'PutEvents') {
    throw new Error(`the harness does not run EventBridge ${request.operation}`);
  }
  const entries = request.events.map((event) => ({
    Source: event.source,
    DetailType: event.detailType,
    Detail: JSON.stringify(event.detail),
    EventBusName: dataSource.busName,
    ...(event.time ? { Time: Math.floor(Date.parse(event.time) / 1000) } : {}),
    ...(event.resources ? { Resources: event.resources } : {}),
  }));
  const answer = await awsCall(config, 'events', 'AWSEvents.PutEvents', { Entries: entries },
    'application/x-amz-json-1.1');
  if (answer.error) return { error: { ...answer.error, type: answer.error.type.replace('DynamoDB:', 'EventBridge:') } };
  return { data: answer.data };
}

// The RDS Data API's ExecuteStatement, one statement at a time (each is its own transaction,
// as the Data API runs a statement outside a transaction id), answered in its JSON shape.
function dataApiField(value) {
  if (value === null || value === undefined) return { isNull: true };
  if (typeof value === 'boolean') return { booleanValue: value };
  if (typeof value === 'number') return Number.isInteger(value) ? { longValue: value } : { doubleValue: value };
  return { stringValue: String(value) };
}

async function rds(request, config) {
  const client = new pg.Client({ connectionString: config.databaseUrl });
  await client.connect();
  try {
    const results = [];
    for (const statement of request.statements) {
      const names = [];
      const text = statement.replace(/(?<!:):([A-Za-z_][A-Za-z0-9_]*)/g, (match, name) => {
        const key = ':' + name;
        if (!Object.hasOwn(request.variableMap ?? {}, key)) return match;
        if (!names.includes(key)) names.push(key);
        return '$' + (names.indexOf(key) + 1);
      });
      const values = names.map((key) => request.variableMap[key]);
      const answer = await client.query({ text, values, rowMode: 'array' });
      results.push({
        columnMetadata: answer.fields.map((field) => ({ name: field.name })),
        records: answer.rows.map((row) => row.map(dataApiField)),
        numberOfRecordsUpdated: answer.rowCount ?? 0,
      });
    }
    return { data: JSON.stringify({ sqlStatementResults: results }) };
  } catch (error) {
    return { error: { type: 'RDSHttp:DatabaseErrorException', message: error.message } };
  } finally {
    await client.end();
  }
}

export async function invoke(kind, request, config, dataSource) {
  switch (kind) {
    case 'AMAZON_DYNAMODB': return dynamodb(request, config, dataSource);
    case 'HTTP': return http(request, config, dataSource);
    case 'AMAZON_EVENTBRIDGE': return eventbridge(request, config, dataSource);
    case 'RELATIONAL_DATABASE': return rds(request, config, dataSource);
    case 'NONE': return { data: request.payload ?? null };
    default: throw new Error(`no data source of kind ${kind}`);
  }
}

export { fromDynamoDB };
