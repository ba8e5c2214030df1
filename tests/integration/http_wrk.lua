-- http_wrk.lua - wrk checks every response of webproxy --http: status 200 and a body of the
-- expected length (the script's argument). done() prints the totals http_wrk.sh checks.
local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    want = tonumber(args[1])
    n, bad = 0, 0
end

function response(status, headers, body)
    n = n + 1
    if status ~= 200 or #body ~= want then
        bad = bad + 1
    end
end

function done(summary, latency, requests)
    local tn, tb = 0, 0
    for _, t in ipairs(threads) do
        tn = tn + t:get("n")
        tb = tb + t:get("bad")
    end
    local e = summary.errors
    io.write(string.format("responses %d bad %d errors %d %d %d %d %d\n", tn, tb, e.connect,
        e.read, e.write, e.status, e.timeout))
end
