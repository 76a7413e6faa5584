// domain.saga.order_id_for: the same key for the same customer always means the same order.
function orderIdFor(customerId, idempotencyKey) {
  return 'o-' + digest(['checkout', customerId, idempotencyKey]).slice(0, 24);
}
