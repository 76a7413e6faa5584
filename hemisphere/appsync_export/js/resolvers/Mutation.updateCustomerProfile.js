// Mutation.updateCustomerProfile: a pipeline of loadProfileCustomer -> putProfileUpdate.
// Asynchronous: the receipt now, the change later through onCustomerChanged.
export function request() {
  return {};
}

export function response(ctx) {
  return ctx.prev.result;
}
