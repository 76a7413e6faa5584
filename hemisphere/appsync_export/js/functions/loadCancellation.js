import { util } from '@aws-appsync/utils';

// cancelOrder, step 1 (DynamoDB BatchGetItem): the order and the control item. Only a
// CONFIRMED order is cancelled; a CANCELLED one is answered as it is (asking again changes
// nothing), as resolvers/writes.py decides. A token caller cancels only its own customer's
// orders: checked once the order is read, before its state is told or anything is started.
export function request(ctx) {
  requireIdempotencyKey(ctx.args.idempotencyKey);
  const tables = {};
  tables[ctx.env.TABLE_NAME] = {
    keys: [
      util.dynamodb.toMapValues({ pk: 'ORDER#' + ctx.args.id, sk: 'A' }),
      util.dynamodb.toMapValues({ pk: 'CONTROL', sk: 'TOPOLOGY' }),
    ],
    consistentRead: true,
  };
  return { operation: 'BatchGetItem', tables };
}

export function response(ctx) {
  failOnDataSourceError(ctx.error);
  const found = {};
  for (const item of ctx.result.data[ctx.env.TABLE_NAME]) {
    if (item) {
      found[item.pk] = item;
    }
  }
  requireWritable(found['CONTROL'], ctx.env);
  const order = entityOf(found['ORDER#' + ctx.args.id]);
  if (!order) {
    util.error(`order ${ctx.args.id} does not exist`, 'NotFound');
  }
  requireOwner(ctx, order.customerId);
  ctx.stash.order = order;
  if (order.status === 'CANCELLED') {
    return null;
  }
  if (order.status !== 'CONFIRMED') {
    util.error(`order ${order.id} is ${order.status}: only a CONFIRMED order can be cancelled`,
      'OrderNotCancellable');
  }
  ctx.stash.execution = {
    stateMachineArn: ctx.env.CANCEL_STATE_MACHINE_ARN,
    name: cancelExecutionName(order.id, ctx.args.idempotencyKey),
    input: canonicalJson({ orderId: order.id, idempotencyKey: ctx.args.idempotencyKey }),
    // The name is derived from both fields of the input: compare all of it.
    comparedPart: null,
    conflict: `idempotencyKey '${ctx.args.idempotencyKey}' was used for another cancellation`,
  };
  return null;
}
