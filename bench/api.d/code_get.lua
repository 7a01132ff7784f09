-- GET PREFIX .. CODE, cycling over a set of ticket codes: attendees asking
-- for session access (GET /v1/sessions/{id}/access?ticket_code=, cached per
-- code) or downloading session content (GET /v1/content/{id}?ticket_code=).
--   wrk ... -s code_get.lua URL -- PREFIX CODES_FILE THREADS
dofile(os.getenv("USHER_BENCH_API_D") .. "/report.lua")
dofile(os.getenv("USHER_BENCH_API_D") .. "/codes.lua")

local codes, prefix
local n = 0

function init(args)
    prefix = args[1]
    codes = thread_codes(args[2], tonumber(args[3]))
end

function request()
    n = n % #codes + 1
    return wrk.format("GET", prefix .. codes[n])
end
