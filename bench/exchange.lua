-- wrk script: the authorization code flow's two requests, over and over:
-- GET /oidc/authorize with a signed-in session answers a code (in the
-- redirect), and POST /oidc/token exchanges it (client_secret_basic). A code
-- is used once: each answer's code goes into a queue, and the next request
-- exchanges one from there when there is one, else asks for another.
--
-- The authorize answer is a 302, which wrk counts among its "Non-2xx or 3xx
-- responses"; so this script counts what it expects instead (a redirect with a
-- code, or a 200 with an access token) and prints the rest on its own line,
-- "unexpected answers: N", which bench/run reads in place of wrk's count.
local cookie = os.getenv("USHER_BENCH_COOKIE")
local client = os.getenv("USHER_BENCH_CLIENT_ID")
local basic = os.getenv("USHER_BENCH_BASIC")
local redirect = "http%3A%2F%2F127.0.0.1%2Fcallback"
local authorize = "/oidc/authorize?response_type=code&scope=openid&client_id=" .. client ..
  "&redirect_uri=" .. redirect .. "&state=bench"
local codes = {}
unexpected = 0
local threads = {}

setup = function(thread)
  table.insert(threads, thread)
end

request = function()
  local code = table.remove(codes)
  if code then
    return wrk.format("POST", "/oidc/token", {
      ["Authorization"] = "Basic " .. basic,
      ["Content-Type"] = "application/x-www-form-urlencoded",
    }, "grant_type=authorization_code&code=" .. code .. "&redirect_uri=" .. redirect)
  end
  return wrk.format("GET", authorize, { ["Cookie"] = cookie })
end

response = function(status, headers, body)
  local location = headers["Location"] or headers["location"]
  local code = location and location:match("[?&]code=([^&]+)")
  if (status == 302 or status == 303) and code then
    table.insert(codes, code)
  elseif not (status == 200 and body:find("access_token", 1, true)) then
    unexpected = unexpected + 1
  end
end

done = function(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("unexpected")
  end
  io.write("unexpected answers: " .. total .. "\n")
end
