-- wrk: GET with the API key; prints the same STATS line as post.lua.
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer bench-key"

done = function(summary, latency, requests)
  io.write(string.format("STATS p50=%d p90=%d p99=%d rps=%.1f requests=%d errors=%d\n",
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    summary.requests / (summary.duration / 1e6), summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
