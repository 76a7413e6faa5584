// Mutation.cancelOrder: a pipeline of loadCancellation -> startExecution ->
// compareExistingExecution. Answers the order as projected; its CANCELLED state follows
// through the projection and onOrderChanged.
export function request() {
  return {};
}

export function response(ctx) {
  return ctx.stash.order;
}
