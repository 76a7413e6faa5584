// adapters.eventbridge.profile_update_request_id: the same (customer, key) names one request.
function profileUpdateRequestId(customerId, idempotencyKey) {
  return 'pu-' + digest(['profile', customerId, idempotencyKey]).slice(0, 24);
}
