-- wrk script: the authorization code flow's two requests, over and over:
-- GET /oidc/authorize with a signed-in session answers a code (in the
-- redirect), and POST /oidc/token exchanges it (client_secret_basic). A code
-- is used once: each answer's code goes into a queue, and the next request
-- exchanges one from there when there is one, else asks for another.
local cookie = os.getenv("USHER_BENCH_COOKIE")
local client = os.getenv("USHER_BENCH_CLIENT_ID")
local basic = os.getenv("USHER_BENCH_BASIC")
local redirect = "http%3A%2F%2F127.0.0.1%2Fcallback"
local authorize = "/oidc/authorize?response_type=code&scope=openid&client_id=" .. client ..
  "&redirect_uri=" .. redirect .. "&state=bench"
local codes = {}

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
  if location then
    local code = location:match("[?&]code=([^&]+)")
    if code then
      table.insert(codes, code)
    end
  end
end
