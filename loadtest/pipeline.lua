-- wrk script for pipelining: each write carries `depth` requests (first script argument,
-- default 16); wrk sends the next batch when all of them are answered.
init = function(args)
  local depth = tonumber(args[1]) or 16
  local batch = {}
  for i = 1, depth do
    batch[i] = wrk.format()
  end
  req = table.concat(batch)
end

request = function()
  return req
end
