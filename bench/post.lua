-- wrk script for bench/read_path.py (modelled on the appsync-sim peer's post.lua):
-- POST one GraphQL body (env WRK_BODY) with an AppSync-style API key (env API_KEY), and print
-- one machine-readable RESULT line at the end (latencies in ms).
-- Unlike the peer's script it also counts HTTP-200 responses that carry GraphQL "errors"
-- (a backend timeout is an error inside a 200, which wrk alone would count as a success).
wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-api-key"] = os.getenv("API_KEY") or "da2-barsbarsbarsbarsbarsbars"

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  gql_errors = 0
end

function response(status, headers, body)
  if body and string.find(body, '"errors"', 1, true) then
    gql_errors = gql_errors + 1
    first_error = first_error or string.sub(body, 1, 400)
  end
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  local gql, sample = 0, nil
  for _, thread in ipairs(threads) do
    gql = gql + (thread:get("gql_errors") or 0)
    sample = sample or thread:get("first_error")
  end
  io.write(string.format(
    "RESULT rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f requests=%d non2xx=%d sockerr=%d gqlerr=%d\n",
    summary.requests / secs, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, summary.requests, e.status,
    e.connect + e.read + e.write + e.timeout, gql))
  if sample then
    io.write("FIRST_ERROR " .. string.gsub(sample, "\n", " ") .. "\n")
  end
end
