import { util } from '@aws-appsync/utils';

// Query.product(id): GetItem of the Product's item (pk PRODUCT#<id>, sk A), eventually
// consistent as Hemisphere's reads; null when there is none.
export function request(ctx) {
  return {
    operation: 'GetItem',
    key: util.dynamodb.toMapValues({ pk: 'PRODUCT#' + ctx.args.id, sk: 'A' }),
    consistentRead: false,
  };
}

export function response(ctx) {
  failOnDataSourceError(ctx.error);
  return entityOf(ctx.result);
}
