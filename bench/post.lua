-- wrk: POST the same session request on every connection.
wrk.method = "POST"
wrk.body = '{"agent": "bench", "metadata": {"user_name": "Dana", "user_id": "u-42"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Origin"] = "http://localhost:3000"

-- errors counts non-2xx answers too, so a run of 429s or 502s is never mistaken for speed.
done = function(summary, latency, requests)
  io.write(string.format("STATS p50=%d p90=%d p99=%d rps=%.1f requests=%d errors=%d\n",
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    summary.requests / (summary.duration / 1e6), summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
