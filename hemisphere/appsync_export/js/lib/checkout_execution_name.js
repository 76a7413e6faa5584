// domain.saga.checkout_execution_name: one execution per order and machine.
function checkoutExecutionName(orderId) {
  return 'checkout-' + orderId;
}
