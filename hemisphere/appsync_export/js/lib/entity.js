// An item of the single table as the GraphQL object it serves: items carry their snapshot
// in camelCase next to the key attributes (adapters/dynamodb/items.py), which no GraphQL
// type has, so they are dropped rather than shown to field resolution.

const KEY_ATTRIBUTES = ['pk', 'sk', 'gsi1pk', 'gsi1sk', 'gsi2pk', 'gsi2sk', 'kind'];

function entityOf(item) {
  if (item === undefined || item === null) {
    return null;
  }
  const entity = {};
  for (const [name, value] of Object.entries(item)) {
    if (KEY_ATTRIBUTES.indexOf(name) < 0) {
      entity[name] = value;
    }
  }
  return entity;
}
