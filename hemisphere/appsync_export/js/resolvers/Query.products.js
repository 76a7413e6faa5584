import { util } from '@aws-appsync/utils';

// Query.products(category, limit, nextToken): products in id order, of one category (index
// gsi1, partition CATEGORY#<category>) or of all (index gsi2, partition PRODUCTS), a page at
// a time. As with Hemisphere, a full last page may be followed by an empty one.
export function request(ctx) {
  const category = ctx.args.category;
  const byCategory = category !== undefined && category !== null;
  const query = byCategory
    ? { expression: '#pk = :partition', expressionNames: { '#pk': 'gsi1pk' },
      expressionValues: util.dynamodb.toMapValues({ ':partition': 'CATEGORY#' + category }) }
    : { expression: '#pk = :partition', expressionNames: { '#pk': 'gsi2pk' },
      expressionValues: util.dynamodb.toMapValues({ ':partition': 'PRODUCTS' }) };
  return {
    operation: 'Query',
    index: byCategory ? 'gsi1' : 'gsi2',
    query,
    limit: pageLimit(ctx.args.limit),
    nextToken: ctx.args.nextToken ?? null,
    scanIndexForward: true,
    consistentRead: false,
  };
}

export function response(ctx) {
  failOnDataSourceError(ctx.error);
  return {
    items: ctx.result.items.map((item) => entityOf(item)),
    nextToken: ctx.result.nextToken ?? null,
  };
}
