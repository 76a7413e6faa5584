// Items store times as domain.codec writes them (microseconds, `Z`); Hemisphere answers an
// AWSDateTime with milliseconds (schema/scalars.py, AppSync's own form), truncated.
function toAppSyncDateTime(text) {
  if (typeof text === 'string' && text.length === 27 && text.endsWith('Z') &&
    text.charAt(19) === '.') {
    return text.slice(0, 23) + 'Z';
  }
  return text;
}
