-- wrk script for the gate's load benchmark: POST /v1/intercept with a bearer
-- key and a realistic finance refund request. The same script drives the
-- gate and the bare ceiling.
--
--   COUNTERSIGN_KEY=csk_… wrk -t2 -c64 -d25s --latency -s intercept.lua \
--       http://127.0.0.1:PORT/v1/intercept -- PREFIX [allow|pending|block]
--
-- Every request carries a unique idempotency key, PREFIX-THREAD-N, so every
-- request to the gate creates (and durably records) a new run; PREFIX tells
-- one wrk run from the next in the same database. The refund amount cycles
-- through three cases that the finance policies decide differently (allow,
-- require_approval, block), so every decision path is exercised.
--
-- At the end one machine-readable line is printed:
--   RESULT requests=… rps=… p50_ms=… p90_ms=… p99_ms=… non2xx=… …

local key = os.getenv("COUNTERSIGN_KEY") or "none"

-- {amount, original charge}: 50 → allowed (small-refund), 500 →
-- pending_approval (medium-refund), 120 of a 100 charge → blocked
-- (exceeds-original-charge).
local cases = {
  { "50", "89.90" },
  { "500", "1000" },
  { "120", "100" },
}

local body_format = '{"action":"issue_refund","actor":"support_agent",'
  .. '"reasoning":"Customer reports a duplicate charge on order %d",'
  .. '"idempotency_key":"%s-%d-%d",'
  .. '"payload":{"amount":%s,"currency":"EUR",'
  .. '"original_charge":{"id":"ch_3PmX%08d","amount":%s,"currency":"EUR"},'
  .. '"ticket":"SUP-%d","customer_id":"cus_8HqX2"}}'

-- Main state: number the threads.
local next_thread = 1
function setup(thread)
  thread:set("tid", next_thread)
  next_thread = next_thread + 1
end

-- Per-thread state.
local prefix = "load"
local counter = 0

function init(args)
  prefix = args[1] or prefix
  -- A second argument keeps one case only (e.g. "allow"), to see what each
  -- decision path costs.
  local only = ({ allow = 1, pending = 2, block = 3 })[args[2] or ""]
  if only then
    cases = { cases[only] }
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. key
end

function request()
  counter = counter + 1
  local c = cases[counter % #cases + 1]
  local order = 100000 + counter
  local body = string.format(body_format, order, prefix, tid or 0, counter, c[1], order, c[2], 40000 + counter % 10000)
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "RESULT requests=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f "
      .. "non2xx=%d connect_err=%d read_err=%d write_err=%d timeout_err=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000,
    e.status, e.connect, e.read, e.write, e.timeout))
end
