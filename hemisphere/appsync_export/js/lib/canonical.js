// JSON with sorted keys and no spaces: Python's json.dumps(sort_keys=True,
// separators=(",", ":")), which the execution inputs are written in, so that equal requests
// are equal text and an input read back from DescribeExecution compares as Python compares it.
// No recursion in APPSYNC_JS: the values here are at most three levels deep
// (input -> request -> lines[] -> line), so three explicit levels suffice.

function sortedObject(value) {
  const sorted = {};
  for (const key of Object.keys(value).sort()) {
    sorted[key] = value[key];
  }
  return sorted;
}

function sortLevel(value) {
  if (Array.isArray(value)) {
    return value.map((element) =>
      element !== null && typeof element === 'object' && !Array.isArray(element)
        ? sortedObject(element)
        : element,
    );
  }
  if (value !== null && typeof value === 'object') {
    return sortedObject(value);
  }
  return value;
}

function canonicalJson(value) {
  const top = sortLevel(value);
  if (top === null || typeof top !== 'object' || Array.isArray(top)) {
    return JSON.stringify(top);
  }
  const second = {};
  for (const key of Object.keys(top)) {
    const inner = sortLevel(top[key]);
    if (inner !== null && typeof inner === 'object' && !Array.isArray(inner)) {
      const third = {};
      for (const innerKey of Object.keys(inner)) {
        third[innerKey] = sortLevel(inner[innerKey]);
      }
      second[key] = third;
    } else {
      second[key] = inner;
    }
  }
  return JSON.stringify(second);
}
