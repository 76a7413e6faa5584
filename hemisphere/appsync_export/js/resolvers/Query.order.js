import { util } from '@aws-appsync/utils';

// Query.order(id): GetItem of the Order's item (pk ORDER#<id>, sk A), eventually
// consistent as Hemisphere's reads; null when there is none. A token caller reads only its
// own customer's orders: which customer an order is of is known once it is read.
export function request(ctx) {
  return {
    operation: 'GetItem',
    key: util.dynamodb.toMapValues({ pk: 'ORDER#' + ctx.args.id, sk: 'A' }),
    consistentRead: false,
  };
}

export function response(ctx) {
  failOnDataSourceError(ctx.error);
  const order = entityOf(ctx.result);
  if (order === null) {
    return null;
  }
  requireOwner(ctx, order.customerId);
  return order;
}
