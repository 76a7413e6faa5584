import { util } from '@aws-appsync/utils';

// Query.customer(id): GetItem of the Customer's item (pk CUSTOMER#<id>, sk A), eventually
// consistent as Hemisphere's reads; null when there is none. A token caller reads only its
// own customer (refused before the read).
export function request(ctx) {
  requireOwner(ctx, ctx.args.id);
  return {
    operation: 'GetItem',
    key: util.dynamodb.toMapValues({ pk: 'CUSTOMER#' + ctx.args.id, sk: 'A' }),
    consistentRead: false,
  };
}

export function response(ctx) {
  failOnDataSourceError(ctx.error);
  return entityOf(ctx.result);
}
