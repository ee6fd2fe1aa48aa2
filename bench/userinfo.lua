-- wrk script: GET /oidc/userinfo with one access token (Bearer).
local token = os.getenv("USHER_BENCH_ACCESS_TOKEN")
request = function()
  return wrk.format("GET", "/oidc/userinfo", { ["Authorization"] = "Bearer " .. token })
end
