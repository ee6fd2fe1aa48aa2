-- wrk script: GET /api/authz/forward-auth as Caddy's forward_auth asks it,
-- for a signed-in person with access to the app (the allowed answer, which
-- Usher gives from memory), with a cookie of the tool's beside Usher's (the
-- answer's Cookie header keeps the tool's and drops Usher's).
local cookie = os.getenv("USHER_BENCH_COOKIE")
request = function()
  return wrk.format("GET", "/api/authz/forward-auth", {
    ["Cookie"] = cookie .. "; theme=dark",
    ["Accept"] = "text/html",
    ["X-Forwarded-Method"] = "GET",
    ["X-Forwarded-Proto"] = "https",
    ["X-Forwarded-Host"] = "wiki.bench.example",
    ["X-Forwarded-Uri"] = "/dashboard?panel=3",
  })
end
