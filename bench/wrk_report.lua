-- wrk_report.lua - for bench/run.sh: cycles through the request paths in $WRK_PATHS (space
-- separated), each thread from its own offset, and prints one key=value line like gfload's.
local paths = {}
for p in string.gmatch(os.getenv("WRK_PATHS") or "/", "%S+") do
   paths[#paths + 1] = p
end
local reqs = {}
local i = 0
local counter = 0

setup = function(thread)
   counter = counter + 1
   thread:set("offset", counter)
end

init = function(args)
   for k, p in ipairs(paths) do
      reqs[k] = wrk.format(nil, p)
   end
   i = (offset or 0) % #reqs
end

request = function()
   i = i % #reqs + 1
   return reqs[i]
end

done = function(summary, latency, requests)
   local e = summary.errors
   local failures = e.connect + e.read + e.write + e.status + e.timeout
   local secs = summary.duration / 1e6
   io.write(string.format(
      "wrk requests=%d failures=%d duration_s=%.3f rps=%.1f bytes=%d gbps=%.4f p50_us=%.1f "
         .. "p99_us=%.1f max_us=%.1f err_connect=%d err_read=%d err_write=%d err_status=%d "
         .. "err_timeout=%d\n",
      summary.requests, failures, secs, summary.requests / secs, summary.bytes,
      summary.bytes / secs / 1e9, latency:percentile(50), latency:percentile(99), latency.max,
      e.connect, e.read, e.write, e.status, e.timeout))
end
