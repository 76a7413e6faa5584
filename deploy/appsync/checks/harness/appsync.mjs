// A small AppSync: the exported schema executed by graphql-js, each Query, Mutation and
// Subscription field by its exported APPSYNC_JS resolver (unit, or pipeline of functions) on
// the data sources of datasources.mjs. What AppSync itself enforces (auth directives, scalar
// formats) is out of scope: the harness checks what the resolvers compute. Who calls is the
// request's `auth` ({type: util.authType()'s answer, identity: ctx.identity}; default the API
// key), as AppSync gives it to the resolvers.
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildSchema, graphql, parse } from 'graphql';

import { AppSyncError, EarlyReturn, effects } from './runtime.mjs';
import { invoke } from './datasources.mjs';

const RUNTIME_URL = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), 'runtime.mjs')).href;

// AppSync declares these itself; graphql-js needs them spelled out.
const APPSYNC_PRELUDE = `
scalar AWSDate
scalar AWSTime
scalar AWSDateTime
scalar AWSTimestamp
scalar AWSEmail
scalar AWSJSON
scalar AWSPhone
scalar AWSURL
scalar AWSIPAddress
directive @aws_api_key on OBJECT | FIELD_DEFINITION
directive @aws_iam on OBJECT | FIELD_DEFINITION
directive @aws_oidc on OBJECT | FIELD_DEFINITION
directive @aws_lambda on OBJECT | FIELD_DEFINITION
directive @aws_cognito_user_pools(cognito_groups: [String]) on OBJECT | FIELD_DEFINITION
directive @aws_subscribe(mutations: [String]) on FIELD_DEFINITION
`;

class Handlers {
  constructor(exportDir) {
    this.exportDir = exportDir;
    this.scratch = mkdtempSync(join(tmpdir(), 'appsync-harness-'));
    this.modules = new Map();
  }

  // The module of an exported file, its one import pointed at the harness runtime.
  async load(file) {
    if (!this.modules.has(file)) {
      const text = readFileSync(join(this.exportDir, file), 'utf8')
        .replace(/from '@aws-appsync\/utils'/g, `from '${RUNTIME_URL}'`);
      const path = join(this.scratch, file.replace(/\//g, '__') + '.mjs');
      writeFileSync(path, text);
      this.modules.set(file, await import(pathToFileURL(path).href));
    }
    return this.modules.get(file);
  }

  close() {
    rmSync(this.scratch, { recursive: true, force: true });
  }
}

const API_KEY = { type: 'API Key Authorization', identity: null };
// What a handler runs for, beyond its ctx: the field and the request's authorization mode.
const scopes = new WeakMap();

function call(handler, ctx) {
  const scope = scopes.get(ctx);
  effects.subscriptionFilter = null;
  effects.field = scope.field;
  effects.authType = scope.authType;
  try {
    return { value: handler(ctx) };
  } catch (error) {
    if (error instanceof EarlyReturn) return { early: true, value: error.value };
    throw error;
  }
}

export class AppSync {
  constructor({ exportDir, config }) {
    this.exportDir = exportDir;
    this.config = config;
    this.manifest = JSON.parse(readFileSync(join(exportDir, 'appsync.json'), 'utf8'));
    const sdl = readFileSync(join(exportDir, 'schema.graphql'), 'utf8');
    this.schema = buildSchema(APPSYNC_PRELUDE + sdl);
    this.handlers = new Handlers(exportDir);
    this.filters = [];
    this.calls = [];
  }

  close() {
    this.handlers.close();
  }

  // Every data source call of the requests so far, in order ({dataSource, action}: the
  // operation, or the HTTP API's target): what a refused request did not reach.
  takeCalls() {
    const calls = this.calls;
    this.calls = [];
    return calls;
  }

  async dataSource(name, request) {
    const kind = this.manifest.dataSources[name];
    const headers = request.params?.headers ?? {};
    const action = request.operation ?? headers['x-amz-target'] ?? kind;
    this.calls.push({ dataSource: name, action });
    const dataSource = this.config.dataSources?.[name] ?? {};
    return invoke(kind, request, this.config, dataSource);
  }

  context(resolver, args, stash, auth) {
    const ctx = {
      arguments: args,
      args,
      source: null,
      identity: auth.identity ?? null,
      env: this.config.env,
      stash,
      prev: { result: undefined },
      request: { headers: {}, domainName: null },
      info: { fieldName: resolver.fieldName, parentTypeName: resolver.typeName, variables: {} },
      result: undefined,
      error: undefined,
    };
    scopes.set(ctx, {
      field: { typeName: resolver.typeName, fieldName: resolver.fieldName },
      authType: auth.type,
    });
    return ctx;
  }

  async unit(resolver, module, ctx) {
    const request = call(module.request, ctx);
    if (request.early) return request.value;
    const answer = await this.dataSource(resolver.dataSource, request.value);
    ctx.result = answer.data;
    ctx.error = answer.error;
    return call(module.response, ctx).value;
  }

  async pipeline(resolver, module, ctx) {
    const before = call(module.request, ctx);
    if (before.early) return before.value;
    ctx.prev = { result: before.value };
    for (const name of resolver.functions) {
      const spec = this.manifest.functions[name];
      const fn = await this.handlers.load(spec.file);
      ctx.result = undefined;
      ctx.error = undefined;
      const request = call(fn.request, ctx);
      if (request.early) {
        ctx.prev = { result: request.value };
        continue;
      }
      const answer = await this.dataSource(spec.dataSource, request.value);
      ctx.result = answer.data;
      ctx.error = answer.error;
      ctx.prev = { result: call(fn.response, ctx).value };
    }
    ctx.result = ctx.prev.result;
    return call(module.response, ctx).value;
  }

  async resolve(resolver, args, auth) {
    const module = await this.handlers.load(resolver.file);
    const ctx = this.context(resolver, { ...args }, {}, auth);
    return resolver.kind === 'PIPELINE'
      ? this.pipeline(resolver, module, ctx)
      : this.unit(resolver, module, ctx);
  }

  rootValue(typeName, auth) {
    const root = {};
    for (const resolver of this.manifest.resolvers.filter((r) => r.typeName === typeName)) {
      root[resolver.fieldName] = (args) => this.resolve(resolver, args, auth);
    }
    return root;
  }

  async execute(query, variables = {}, auth = API_KEY) {
    const operation = parse(query).definitions.find((d) => d.kind === 'OperationDefinition');
    const typeName = operation.operation === 'mutation' ? 'Mutation' : 'Query';
    const result = await graphql({
      schema: this.schema,
      source: query,
      variableValues: variables,
      rootValue: this.rootValue(typeName, auth),
    });
    return formatResult(result);
  }

  // A subscription request: runs the field's resolver (what AppSync does when a client
  // subscribes) and answers the enhanced filter it set, or the error it raised.
  async subscribe(query, variables = {}, auth = API_KEY) {
    const document = parse(query);
    const field = document.definitions[0].selectionSet.selections[0];
    const resolver = this.manifest.resolvers.find(
      (r) => r.typeName === 'Subscription' && r.fieldName === field.name.value);
    const args = {};
    for (const argument of field.arguments) {
      args[argument.name.value] = argument.value.kind === 'Variable'
        ? variables[argument.value.name.value]
        : argument.value.value;
    }
    try {
      await this.resolve(resolver, args, auth);
      return { filter: effects.subscriptionFilter };
    } catch (error) {
      return { errors: [formatError({ originalError: error, message: error.message })] };
    }
  }
}

function formatError(error) {
  const original = error.originalError;
  // AppSync names no source document: its locations carry "sourceName": null.
  const locations = error.locations?.map(({ line, column }) => ({ line, column, sourceName: null }));
  const formatted = { message: error.message, path: error.path, locations };
  if (original instanceof AppSyncError) {
    formatted.errorType = original.errorType;
    formatted.errorInfo = original.errorInfo;
    formatted.data = original.data;
  }
  return formatted;
}

function formatResult(result) {
  const formatted = { data: result.data ?? null };
  if (result.errors?.length) formatted.errors = result.errors.map(formatError);
  return JSON.parse(JSON.stringify(formatted));
}

