import { util, extensions } from '@aws-appsync/utils';

// Subscription.onCustomerChanged(id) (NONE data source): an enhanced filter from the
// arguments given, so each given argument must equal the same-named field of the published
// Customer and an omitted one matches anything: Hemisphere's @aws_subscribe semantics.
// Contract v2 (subscriptions/fields.py): a token caller must name its own customer; IAM may
// listen to one customer or to all.
const FILTERED_ARGUMENTS = ['id'];

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
    requireOwner(ctx, filter.id ? filter.id.eq : null);
  }
  if (Object.keys(filter).length > 0) {
    extensions.setSubscriptionFilter(util.transform.toSubscriptionFilter(filter));
  }
  return null;
}
