// Mutation.publishProduct (IAM only; NONE data source): called by the change-stream publisher
// in each region so that AppSync fires onProductChanged subscriptions (@aws_subscribe). The answer
// is the input itself, which AppSync hands to the subscribers' selection sets.
export function request(ctx) {
  return { payload: ctx.args.input };
}

export function response(ctx) {
  return ctx.result;
}
