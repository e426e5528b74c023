-- GET with a status check: every response must be 2xx; `done` prints `STATUS ok=N bad=N first=S`.
-- With BENCH_DETAIL_IDS=N in the environment, each request asks for /posts/<random 1..N>/.
local threads = {}
local ids = tonumber(os.getenv("BENCH_DETAIL_IDS") or "")

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok, bad, first = 0, 0, 0
  math.randomseed(os.time() + #threads)
end

if ids then
  function request()
    return wrk.format("GET", "/posts/" .. math.random(1, ids) .. "/")
  end
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
  else
    bad = bad + 1
    if first == 0 then first = status end
  end
end

function done(summary, latency, requests)
  local total_ok, total_bad, first_bad = 0, 0, 0
  for _, thread in ipairs(threads) do
    total_ok = total_ok + thread:get("ok")
    total_bad = total_bad + thread:get("bad")
    if first_bad == 0 then first_bad = thread:get("first") end
  end
  io.write(string.format("STATUS ok=%d bad=%d first=%d\n", total_ok, total_bad, first_bad))
end
