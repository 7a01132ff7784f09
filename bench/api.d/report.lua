-- What every bench/api wrk script shares: done() prints one JSON line with
-- the rates and the latency percentiles wrk's own report lacks (p95), and
-- thread numbering for the scripts that split their work between threads.
-- Each script loads it with dofile($USHER_BENCH_API_D .. "/report.lua").

local threads_made = 0

-- Numbers each thread (its global thread_id, 1..N) before its init runs.
function setup(thread)
    threads_made = threads_made + 1
    thread:set("thread_id", threads_made)
end

function done(summary, latency, requests)
    local e = summary.errors
    local seconds = summary.duration / 1e6
    local bad = e.status + e.connect + e.read + e.write + e.timeout
    io.write(string.format(
        '{"requests":%d,"seconds":%.3f,"per_s":%.1f,"ok_per_s":%.1f,' ..
        '"p50_ms":%.3f,"p95_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,' ..
        '"non_2xx_3xx":%d,"socket_errors":%d}\n',
        summary.requests, seconds, summary.requests / seconds,
        (summary.requests - e.status) / seconds,
        latency:percentile(50) / 1000, latency:percentile(95) / 1000,
        latency:percentile(99) / 1000, latency.max / 1000,
        e.status, bad - e.status))
end
