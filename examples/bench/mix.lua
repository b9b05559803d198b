-- The request mix of the benchmark, cycled in order by each wrk connection: a short text GET,
-- a GET with a path parameter (small JSON), a POST echoing a ~1 KB JSON body, a GET in a scope.
local body = '{"name":"Widget","description":"' .. string.rep("x", 900) .. '","price_cents":1999,"tags":["a","b","c"],"password":"hunter2"}'
local requests = {}
local i = 0

function init(args)
  local headers = { ["x-api-key"] = "bench-consumer-1", ["content-type"] = "application/json" }
  requests[1] = wrk.format("GET", "/hello", headers)
  requests[2] = wrk.format("GET", "/users/42", headers)
  requests[3] = wrk.format("POST", "/echo", headers, body)
  requests[4] = wrk.format("GET", "/api/items", headers)
end

function request()
  i = i % 4 + 1
  return requests[i]
end
