// An item of the single table as the GraphQL object it serves: items carry their snapshot
// in camelCase next to the key attributes (adapters/dynamodb/items.py), which no GraphQL
// type has, so they are dropped rather than shown to field resolution; times are given as
// AWSDateTime with milliseconds, as Hemisphere gives them.

const KEY_ATTRIBUTES = ['pk', 'sk', 'gsi1pk', 'gsi1sk', 'gsi2pk', 'gsi2sk', 'kind'];
const TIME_ATTRIBUTES = ['createdAt', 'updatedAt'];

function attributeValue(name, value) {
  if (TIME_ATTRIBUTES.indexOf(name) >= 0) {
    return toAppSyncDateTime(value);
  }
  if (name === 'history' && Array.isArray(value)) {
    return value.map((change) => Object.assign({}, change, { at: toAppSyncDateTime(change.at) }));
  }
  return value;
}

function entityOf(item) {
  if (item === undefined || item === null) {
    return null;
  }
  const entity = {};
  for (const [name, value] of Object.entries(item)) {
    if (KEY_ATTRIBUTES.indexOf(name) < 0) {
      entity[name] = attributeValue(name, value);
    }
  }
  return entity;
}
