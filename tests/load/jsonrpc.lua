-- wrk script for tests/load.rs: POSTs one JSON-RPC call and counts answers that are not
-- HTTP 200 or carry a JSON-RPC error; prints machine-readable totals at the end.
wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":["0x1",false]}'
wrk.headers["Content-Type"] = "application/json"

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  bad = 0
end

function response(status, headers, body)
  if status ~= 200 or not body:find('"result"', 1, true) then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local total_bad = 0
  for _, t in ipairs(threads) do
    total_bad = total_bad + t:get("bad")
  end
  io.write(string.format("NW_REQUESTS %d\n", summary.requests))
  io.write(string.format("NW_BAD %d\n", total_bad))
  io.write(string.format("NW_SOCKET_ERRORS %d\n", summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout + summary.errors.status))
  io.write(string.format("NW_P50_US %d\n", latency:percentile(50)))
  io.write(string.format("NW_P99_US %d\n", latency:percentile(99)))
  io.write(string.format("NW_MAX_US %d\n", latency.max))
end
