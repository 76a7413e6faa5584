// The ids and names the Python write path derives (domain/saga.py, adapters/eventbridge.py),
// derived the same way here so that AppSync and Hemisphere start the very same executions:
// a checkout retried through either front end is one order.

const UNIT_SEPARATOR = util.urlDecode('%1F');

function digest(parts) {
  return sha256Hex(parts.join(UNIT_SEPARATOR));
}
