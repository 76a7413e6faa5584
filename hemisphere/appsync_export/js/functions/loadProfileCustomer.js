import { util } from '@aws-appsync/utils';

// updateCustomerProfile, step 1 (DynamoDB GetItem): the command's shape, then the customer
// must exist (NotFound otherwise), as resolvers/writes.py checks. First of all, a token
// caller updates only its own profile: nothing is read or put on the bus for another.
export function request(ctx) {
  const input = ctx.args.input;
  requireOwner(ctx, input.customerId);
  const noName = input.name === undefined || input.name === null;
  const noEmail = input.email === undefined || input.email === null;
  if (noName && noEmail) {
    badRequest('give a new name, a new email, or both');
  }
  if (!noName && (input.name.trim().length < 1 || input.name.trim().length > 200)) {
    badRequest('name must be 1 to 200 characters');
  }
  requireIdempotencyKey(input.idempotencyKey);
  return {
    operation: 'GetItem',
    key: util.dynamodb.toMapValues({ pk: 'CUSTOMER#' + input.customerId, sk: 'A' }),
    consistentRead: false,
  };
}

export function response(ctx) {
  failOnDataSourceError(ctx.error);
  if (!ctx.result) {
    util.error(`customer ${ctx.args.input.customerId} does not exist`, 'NotFound');
  }
  return null;
}
