// domain.commands' idempotency key check, with its message; APPSYNC_JS has no regular
// expressions, so characters are checked against the allowed set.
const KEY_CHARACTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-';

function requireIdempotencyKey(key) {
  const characters = key.split('');
  if (characters.length < 1 || characters.length > 128 ||
    !characters.every((ch) => KEY_CHARACTERS.indexOf(ch) >= 0)) {
    badRequest(
      "idempotencyKey must be 1 to 128 characters of letters, digits, '.', '_', ':' or '-'");
  }
}
