-- wrk script: GET one user by id, with the API key.
local key = os.getenv("USHER_BENCH_KEY")
local id = os.getenv("USHER_BENCH_USER")
request = function()
  return wrk.format("GET", "/api/v1/users/" .. id, { ["X-N8N-API-KEY"] = key })
end
