import { util } from '@aws-appsync/utils';

// Query.ordersByCustomer(customerId, limit, nextToken): a customer's orders newest first
// (index gsi1, partition CUSTOMER#<id>, sort key <createdAt>#<id> read backwards). A token
// caller lists only its own customer's orders.
export function request(ctx) {
  requireOwner(ctx, ctx.args.customerId);
  return {
    operation: 'Query',
    index: 'gsi1',
    query: {
      expression: '#pk = :partition',
      expressionNames: { '#pk': 'gsi1pk' },
      expressionValues: util.dynamodb.toMapValues({
        ':partition': 'CUSTOMER#' + ctx.args.customerId,
      }),
    },
    limit: pageLimit(ctx.args.limit),
    nextToken: ctx.args.nextToken ?? null,
    scanIndexForward: false,
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
