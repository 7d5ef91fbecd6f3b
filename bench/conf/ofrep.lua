-- wrk script for bench/ofrep.sh: POSTs an OFREP evaluation with a context, with the key,
-- and (OFREP_ETAG set) If-None-Match; prints one BENCH line (statuses are counted by ficus's
-- /metrics).
-- OFREP_USERS distinct targeting keys are cycled, so splits and ETags vary like real traffic.
local path = os.getenv("OFREP_PATH") or "/ofrep/v1/evaluate/flags"
local key = os.getenv("OFREP_KEY") or ""
local etag = os.getenv("OFREP_ETAG") or ""
local users = tonumber(os.getenv("OFREP_USERS") or "1") or 1
local n = 0

request = function()
  n = n + 1
  local body = string.format(
    '{"context":{"targetingKey":"user-%d","plan":"pro","appVersion":"2.3.1","country":"PT"}}',
    n % users)
  local headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key }
  if etag ~= "" then headers["If-None-Match"] = etag end
  return wrk.format("POST", path, headers, body)
end

done = function(summary, latency, requests)
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout))
end
