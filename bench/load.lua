-- wrk script for every load in bench/ (run.sh, ab.sh, compare.sh, redis.sh). Environment:
--   METHOD (POST), BODY, TOKEN (one bearer token for every request),
--   TOKENS (a file, one token per line: each request presents the next one; the thread stops
--   when they run out, so every token is seen once), IPS (N: cycle through N distinct
--   Fly-Client-IP values), HEADERS ("Name: value|Name: value"), SCHEME (the Authorization
--   scheme, Bearer by default), PROOFS (a file of DPoP proofs: each request sends the next one
--   in a DPoP header and the thread stops when they run out), EXPECT_STATUS (a status every
--   response must have, e.g. 401: the others are counted as `unexpected`; unset or 2xx: no
--   per-response callback, so ordinary loads stay as cheap for wrk as before).
local method = os.getenv("METHOD") or "POST"
local body = os.getenv("BODY")
local headers = {["Accept"] = "application/json, text/event-stream"}
if method == "POST" then headers["Content-Type"] = "application/json" end
local scheme = os.getenv("SCHEME") or "Bearer"
local token = os.getenv("TOKEN")
if token and token ~= "" then headers["Authorization"] = scheme .. " " .. token end
for h in string.gmatch(os.getenv("HEADERS") or "", "[^|]+") do
  local name, value = h:match("^%s*([^:]+):%s*(.*)$")
  headers[name] = value
end
local tokens, ips, n = nil, tonumber(os.getenv("IPS") or "0"), 0
local limit = tonumber(os.getenv("LIMIT") or "0")
local file = os.getenv("TOKENS")
if file and file ~= "" then
  tokens = {}
  for line in io.lines(file) do tokens[#tokens + 1] = line end
end
local proofs = nil
local proof_file = os.getenv("PROOFS")
if proof_file and proof_file ~= "" then
  proofs = {}
  for line in io.lines(proof_file) do proofs[#proofs + 1] = line end
end
local fixed = nil

init = function(args)
  headers["Host"] = wrk.headers["Host"] -- set by wrk.init just before this runs
  if not tokens and not proofs and ips == 0 and limit == 0 then fixed = wrk.format(method, nil, headers, body) end
end

request = function()
  if fixed then return fixed end
  n = n + 1
  if limit > 0 and n >= limit then wrk.thread:stop() end
  if tokens then
    if n > #tokens then wrk.thread:stop(); n = #tokens end
    headers["Authorization"] = scheme .. " " .. tokens[n]
  end
  if proofs then
    if n > #proofs then wrk.thread:stop(); n = #proofs end
    headers["DPoP"] = proofs[n]
  end
  if ips > 0 then
    local i = n % ips
    headers["Fly-Client-IP"] = string.format("10.%d.%d.%d", math.floor(i / 65536) % 256, math.floor(i / 256) % 256, i % 256)
  end
  return wrk.format(method, nil, headers, body)
end

local threads = {}
setup = function(thread) table.insert(threads, thread) end

unexpected = 0
local expect = tonumber(os.getenv("EXPECT_STATUS") or "")
if expect then
  response = function(status, headers, body)
    if status ~= expect then unexpected = unexpected + 1 end
  end
end

done = function(summary, latency, requests)
  local wrong = 0
  for _, t in ipairs(threads) do wrong = wrong + (t:get("unexpected") or 0) end
  io.write(string.format(
    "RESULT requests=%d rps=%.0f p50_ms=%.3f p99_ms=%.3f errors=%d non2xx=%d unexpected=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, wrong))
end
