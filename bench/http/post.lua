-- POST /posts/ with a JSON body and a status check: every response must be 2xx (201);
-- `done` prints `STATUS ok=N bad=N first=S`.
local threads = {}

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"title":"Benchmarking Core","content":"A post written by wrk to measure the'
  .. ' cost of validating a body, inserting a row and returning it.","is_published":true,'
  .. '"views":7}'

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok, bad, first = 0, 0, 0
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
