-- The benchmark's request mix with a different consumer on every request: `x-api-key` cycles
-- through 100,000 distinct ids (per wrk thread, offset so threads do not repeat each other).
local body = '{"name":"Widget","description":"' .. string.rep("x", 900) .. '","price_cents":1999,"tags":["a","b","c"],"password":"hunter2"}'
local paths = { "/hello", "/users/42", "/echo", "/api/items" }
local n = 0
local distinct = 100000

function request()
  n = n + 1
  local i = n % 4 + 1
  local headers = { ["x-api-key"] = "consumer-" .. (n % distinct), ["content-type"] = "application/json" }
  if i == 3 then
    return wrk.format("POST", paths[i], headers, body)
  end
  return wrk.format("GET", paths[i], headers)
end
