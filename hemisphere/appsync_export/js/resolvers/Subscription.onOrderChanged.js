import { util, extensions } from '@aws-appsync/utils';

// Subscription.onOrderChanged(id, customerId) (NONE data source): an enhanced filter from the
// arguments given, so each given argument must equal the same-named field of the published
// Order and an omitted one matches anything: Hemisphere's @aws_subscribe semantics.
//
// Contract v2 (subscriptions/fields.py _own_orders): IAM listens as it asks. A token caller
// must give its own customerId or an order id, and the filter always holds its own customer,
// so nothing of another customer can be delivered to it, whatever id it names (Hemisphere
// also refuses an order id of another customer at once; with no data source here, such a
// subscription is accepted and never delivers).
const FILTERED_ARGUMENTS = ['id', 'customerId'];

export function request() {
  return { payload: null };
}

export function response(ctx) {
  const filter = {};
  for (const name of FILTERED_ARGUMENTS) {
    const value = ctx.args[name];
    if (value !== undefined && value !== null) {
      filter[name] = { eq: value };
    }
  }
  if (!isIamCaller()) {
    const own = callerCustomerId(ctx);
    if (own === null || filter.customerId || !filter.id) {
      // A token without a customer, a customer named, or nothing named: it must be its own.
      requireOwner(ctx, ctx.args.customerId);
    }
    filter.customerId = { eq: own };
  }
  if (Object.keys(filter).length > 0) {
    extensions.setSubscriptionFilter(util.transform.toSubscriptionFilter(filter));
  }
  return null;
}
