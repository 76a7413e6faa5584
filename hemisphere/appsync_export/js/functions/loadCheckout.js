import { util } from '@aws-appsync/utils';

// Checkout, step 1 (DynamoDB BatchGetItem): validate the request's shape, then read the
// customer, the products, the order this idempotency key names (if it exists) and the control
// item from this region's projections in one call, and check them as resolvers/writes.py
// does. Leaves in the stash what the next steps need. First of all, a token caller checks
// out only for its own customer: nothing is validated, read or started for another.
const MAX_LINES = 50;
const MAX_QUANTITY = 100;

export function request(ctx) {
  const input = ctx.args.input;
  requireOwner(ctx, input.customerId);
  if (input.lines.length === 0) {
    badRequest('a checkout needs at least one line');
  }
  if (input.lines.length > MAX_LINES) {
    badRequest(`a checkout has at most ${MAX_LINES} lines`);
  }
  const seen = [];
  for (const line of input.lines) {
    if (line.quantity < 1 || line.quantity > MAX_QUANTITY) {
      badRequest(`quantity of ${line.productId} must be 1 to ${MAX_QUANTITY}, got ${line.quantity}`);
    }
    if (seen.indexOf(line.productId) >= 0) {
      badRequest(`product ${line.productId} is on more than one line`);
    }
    seen.push(line.productId);
  }
  if (input.paymentToken.trim().length === 0 || input.paymentToken.length > 256) {
    badRequest("paymentToken must be a card provider's token");
  }
  requireIdempotencyKey(input.idempotencyKey);

  const orderId = orderIdFor(input.customerId, input.idempotencyKey);
  ctx.stash.orderId = orderId;
  const keys = [
    { pk: 'CUSTOMER#' + input.customerId, sk: 'A' },
    { pk: 'ORDER#' + orderId, sk: 'A' },
    { pk: 'CONTROL', sk: 'TOPOLOGY' },
  ].concat(seen.map((productId) => ({ pk: 'PRODUCT#' + productId, sk: 'A' })));
  const tables = {};
  tables[ctx.env.TABLE_NAME] = {
    keys: keys.map((key) => util.dynamodb.toMapValues(key)),
    consistentRead: true,
  };
  return { operation: 'BatchGetItem', tables };
}

export function response(ctx) {
  failOnDataSourceError(ctx.error);
  const input = ctx.args.input;
  // BatchGetItem answers in no particular order: find each item by its key.
  const found = {};
  for (const item of ctx.result.data[ctx.env.TABLE_NAME]) {
    if (item) {
      found[item.pk] = item;
    }
  }
  requireWritable(found['CONTROL'], ctx.env);
  const customer = found['CUSTOMER#' + input.customerId];
  if (!customer) {
    badRequest(`customer ${input.customerId} does not exist`);
  }
  const missing = input.lines
    .filter((line) => !found['PRODUCT#' + line.productId])
    .map((line) => line.productId);
  if (missing.length > 0) {
    badRequest(`unknown products: ${missing.join(', ')}`);
  }
  const products = input.lines.map((line) => entityOf(found['PRODUCT#' + line.productId]));
  const currencies = [];
  for (const product of products) {
    if (currencies.indexOf(product.price.currency) < 0) {
      currencies.push(product.price.currency);
    }
  }
  if (currencies.length !== 1) {
    badRequest(`an order is in one currency; these products are in ${currencies.sort().join(', ')}`);
  }
  if (SUPPORTED_CURRENCIES.indexOf(currencies[0]) < 0) {
    badRequest(`currency ${currencies[0]} is not one the shop settles`);
  }

  const request = {
    customerId: input.customerId,
    lines: input.lines.map((line) => ({ productId: line.productId, quantity: line.quantity })),
    paymentToken: input.paymentToken,
    idempotencyKey: input.idempotencyKey,
  };
  ctx.stash.customer = entityOf(customer);
  ctx.stash.products = products;
  ctx.stash.existingOrder = entityOf(found['ORDER#' + ctx.stash.orderId]);
  ctx.stash.execution = {
    stateMachineArn: ctx.env.CHECKOUT_STATE_MACHINE_ARN,
    name: checkoutExecutionName(ctx.stash.orderId),
    input: canonicalJson({ orderId: ctx.stash.orderId, placedIn: ctx.env.REGION, request }),
    // Two checkouts with one key are the same request exactly when their requests are equal.
    comparedPart: 'request',
    conflict: `idempotencyKey '${input.idempotencyKey}' was used for another checkout`,
  };
  return null;
}
