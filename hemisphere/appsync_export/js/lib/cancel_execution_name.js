// domain.saga.cancel_execution_name.
function cancelExecutionName(orderId, idempotencyKey) {
  return 'cancel-' + orderId + '-' + digest([idempotencyKey]).slice(0, 12);
}
