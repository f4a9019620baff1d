-- wrk script: GET /articles/{id}/related?k=K, ids drawn at random from a file.
-- usage: wrk ... -s wrk_random_ids.lua URL -- IDS_FILE K SEED
-- Prints one JSON line at the end (latencies in microseconds).
local counter = 0
local ids = {}
local k = "5"

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then ids[#ids + 1] = line end
  end
  k = args[2] or "5"
  math.randomseed(tonumber(args[3] or "0") * 1000 + (tid or 0))
end

function request()
  return wrk.format("GET", "/articles/" .. ids[math.random(#ids)] .. "/related?k=" .. k)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "p99.9": %d, "mean": %.1f, "max": %d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.mean, latency.max))
end
