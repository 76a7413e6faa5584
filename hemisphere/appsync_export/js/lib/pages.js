// AppSync pagination as Hemisphere's (resolvers/pagination.py): `limit` defaults to 20 and is
// capped at 100; below 1 is a BadRequestException. The nextToken is AppSync's own (opaque,
// encrypted, bound to the query by DynamoDB's key condition).

const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 100;

function pageLimit(limit) {
  if (limit === undefined || limit === null) {
    return DEFAULT_LIMIT;
  }
  if (limit < 1) {
    util.error(`limit must be a positive number, got ${limit}`, 'BadRequestException');
  }
  return Math.min(limit, MAX_LIMIT);
}
