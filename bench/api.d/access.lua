-- GET /v1/sessions/{id}/access?ticket_code=CODE, cycling over a set of codes
-- (attendees asking again and again: the answers are cached per code).
--   wrk ... -s access.lua URL -- SESSION CODES_FILE THREADS
dofile(os.getenv("USHER_BENCH_API_D") .. "/report.lua")
dofile(os.getenv("USHER_BENCH_API_D") .. "/codes.lua")

local codes, prefix
local n = 0

function init(args)
    prefix = "/v1/sessions/" .. args[1] .. "/access?ticket_code="
    codes = thread_codes(args[2], tonumber(args[3]))
end

function request()
    n = n % #codes + 1
    return wrk.format("GET", prefix .. codes[n])
end
