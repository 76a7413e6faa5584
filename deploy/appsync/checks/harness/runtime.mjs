// The subset of AppSync's APPSYNC_JS runtime (`util`, `runtime`, `extensions` of
// '@aws-appsync/utils') that the exported resolvers use, for executing them in Node.
// @aws-appsync/utils ships only types; this is the behaviour AppSync documents for each call.

export class AppSyncError extends Error {
  constructor(message, errorType, data, errorInfo) {
    super(message);
    this.errorType = errorType ?? null;
    this.data = data ?? null;
    this.errorInfo = errorInfo ?? null;
  }
}

// runtime.earlyReturn: leaves the handler at once with `value` as its result.
export class EarlyReturn extends Error {
  constructor(value) {
    super('early return');
    this.value = value;
  }
}

// What the current evaluation set through `extensions` and util.appendError (the executor
// resets it for each handler call), and what it runs for: the field (util.unauthorized names
// it) and the request's authorization mode (util.authType answers it).
export const effects = {
  subscriptionFilter: null,
  appendedErrors: [],
  field: { typeName: null, fieldName: null },
  authType: 'API Key Authorization',
};

function toDynamoDB(value) {
  if (value === null || value === undefined) return { NULL: true };
  if (typeof value === 'string') return { S: value };
  if (typeof value === 'number') return { N: String(value) };
  if (typeof value === 'boolean') return { BOOL: value };
  if (Array.isArray(value)) return { L: value.map(toDynamoDB) };
  if (typeof value === 'object') {
    return { M: Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toDynamoDB(v)])) };
  }
  throw new TypeError(`cannot convert ${typeof value} to a DynamoDB value`);
}

export function fromDynamoDB(attribute) {
  const [[tag, inner]] = Object.entries(attribute);
  switch (tag) {
    case 'S': return inner;
    case 'N': return Number(inner);
    case 'BOOL': return inner;
    case 'NULL': return null;
    case 'L': return inner.map(fromDynamoDB);
    case 'M': return fromDynamoDBMap(inner);
    case 'SS': return inner;
    case 'NS': return inner.map(Number);
    default: throw new TypeError(`unsupported DynamoDB type ${tag}`);
  }
}

export function fromDynamoDBMap(map) {
  return Object.fromEntries(Object.entries(map).map(([k, v]) => [k, fromDynamoDB(v)]));
}

// Java's URLEncoder, which AppSync's util.urlEncode is: letters, digits and .-*_ stay, a space
// is '+', every other byte of the UTF-8 text is %XX.
function urlEncode(text) {
  return encodeURIComponent(text)
    .replace(/[!'()~]/g, (ch) => '%' + ch.charCodeAt(0).toString(16).toUpperCase())
    .replace(/%20/g, '+');
}

function toSubscriptionFilter(filter) {
  const filters = [];
  for (const [fieldName, condition] of Object.entries(filter)) {
    for (const [operator, value] of Object.entries(condition)) {
      filters.push({ fieldName, operator, value });
    }
  }
  return { filterGroup: [{ filters }] };
}

function rdsToJsonObject(result) {
  const answer = typeof result === 'string' ? JSON.parse(result) : result;
  return answer.sqlStatementResults.map((statement) =>
    (statement.records ?? []).map((record) =>
      Object.fromEntries(record.map((field, index) => {
        const name = statement.columnMetadata[index].name;
        if (field.isNull) return [name, null];
        const [value] = Object.values(field);
        return [name, value];
      })),
    ),
  );
}

export const util = {
  error(message, errorType, data, errorInfo) {
    throw new AppSyncError(message, errorType, data, errorInfo);
  },
  // AppSync's refusal: the field is null with its own Unauthorized error.
  unauthorized() {
    const { typeName, fieldName } = effects.field;
    throw new AppSyncError(`Not Authorized to access ${fieldName} on type ${typeName}`,
      'Unauthorized');
  },
  authType: () => effects.authType,
  appendError(message, errorType, data, errorInfo) {
    effects.appendedErrors.push(new AppSyncError(message, errorType, data, errorInfo));
  },
  urlEncode,
  urlDecode: (text) => decodeURIComponent(text.replace(/\+/g, ' ')),
  base64Encode: (text) => Buffer.from(text, 'utf8').toString('base64'),
  base64Decode: (text) => Buffer.from(text, 'base64').toString('utf8'),
  autoId: () => crypto.randomUUID(),
  isNull: (value) => value === null || value === undefined,
  time: {
    nowISO8601: () => new Date().toISOString(),
    nowEpochMilliSeconds: () => Date.now(),
    nowEpochSeconds: () => Math.floor(Date.now() / 1000),
  },
  dynamodb: {
    toDynamoDB,
    toMapValues: (values) =>
      Object.fromEntries(Object.entries(values).map(([k, v]) => [k, toDynamoDB(v)])),
  },
  transform: { toSubscriptionFilter },
  rds: { toJsonObject: rdsToJsonObject },
};

export const runtime = {
  earlyReturn(value) {
    throw new EarlyReturn(value);
  },
};

export const extensions = {
  setSubscriptionFilter(filter) {
    effects.subscriptionFilter = filter;
  },
};
