// Now as domain.codec.encode_time writes times: UTC, microseconds, `Z`.
function encodeNow() {
  const iso = util.time.nowISO8601();
  return iso.endsWith('Z') && iso.length === 24 ? iso.slice(0, 23) + '000Z' : iso;
}
