-- wrk script: walks GET /api/v1/users?limit=250 by its cursor, starting
-- over at the end, so every request is a real next page.
local key = os.getenv("USHER_BENCH_KEY")
local base = "/api/v1/users?limit=250"
local path = base

request = function()
  return wrk.format("GET", path, { ["X-N8N-API-KEY"] = key })
end

response = function(status, headers, body)
  local cursor = body:match('"nextCursor":"([^"]+)"')
  if cursor then
    path = base .. "&cursor=" .. cursor
  else
    path = base
  end
end
