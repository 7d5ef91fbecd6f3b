-- Prints one machine-readable line at the end of a wrk run; latencies in us.
-- Defines only done(), so wrk keeps its static (pre-built) request: a GET, or with
-- WRK_BODY=N in the environment a POST with an N-byte JSON body. With WRK_DELAY_MS=D > 0
-- each connection waits 0 to 2D ms (uniformly drawn, D on average) after each response
-- before its next request (wrk's delay(); latency is still timed from the request's write,
-- so the wait is not counted). A fixed D would keep the connections in lockstep: all of
-- them answered in one burst would all send again in one burst D ms later.
local body_bytes = tonumber(os.getenv("WRK_BODY") or "0") or 0
if body_bytes > 0 then
  wrk.method = "POST"
  wrk.body = string.rep("b", body_bytes)
  wrk.headers["Content-Type"] = "application/json"
end
local delay_ms = tonumber(os.getenv("WRK_DELAY_MS") or "0") or 0
if delay_ms > 0 then
  math.randomseed(os.time())
  delay = function() return math.random(0, 2 * delay_ms) end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d bytes=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
