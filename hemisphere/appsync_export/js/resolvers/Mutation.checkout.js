import { util } from '@aws-appsync/utils';

// Mutation.checkout: a pipeline of loadCheckout -> startExecution ->
// compareExistingExecution. Answers the order as the projection has it when the same request
// came before, or PENDING as the saga's first step will create it (resolvers/writes.py).
export function request() {
  return {};
}

export function response(ctx) {
  if (ctx.stash.existingOrder) {
    return ctx.stash.existingOrder;
  }
  const at = util.time.nowISO8601();
  const customer = ctx.stash.customer;
  const lines = ctx.args.input.lines.map((line, index) => ({
    productId: ctx.stash.products[index].id,
    productName: ctx.stash.products[index].name,
    quantity: line.quantity,
    unitPrice: ctx.stash.products[index].price,
  }));
  const currency = ctx.stash.products[0].price.currency;
  const amount = lines.reduce((sum, line) => sum + line.quantity * line.unitPrice.amount, 0);
  return {
    id: ctx.stash.orderId,
    customerId: customer.id,
    customerName: customer.name,
    status: 'PENDING',
    lines,
    total: { amount, currency },
    failureReason: null,
    history: [{ status: 'PENDING', at, reason: null }],
    placedIn: ctx.env.REGION,
    createdAt: at,
    updatedAt: at,
    version: 0,
  };
}
