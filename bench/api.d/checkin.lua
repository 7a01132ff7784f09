-- POST /v1/checkins, a code never checked in on every request: each thread
-- walks its share of the pre-signed codes (usher-bench-api-codes). Past the
-- last one it starts over, and the repeats answer 409 (counted as non-2xx).
--   wrk ... -s checkin.lua URL -- CODES_FILE SCANNER_TOKEN THREADS
dofile(os.getenv("USHER_BENCH_API_D") .. "/report.lua")
dofile(os.getenv("USHER_BENCH_API_D") .. "/codes.lua")

local codes, headers
local n = 0

function init(args)
    codes = thread_codes(args[1], tonumber(args[3]))
    headers = { ["Content-Type"] = "application/json",
                ["Authorization"] = "Bearer " .. args[2] }
end

function request()
    n = n % #codes + 1
    local body = string.format('{"ticket_code":"%s","gate":"wrk"}', codes[n])
    return wrk.format("POST", "/v1/checkins", headers, body)
end
