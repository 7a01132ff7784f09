-- POST /v1/events/{id}/registrations, a fresh email on every request (TAG
-- keeps them fresh across runs).  wrk ... -s register.lua URL -- EVENT TICKET_TYPE TAG
dofile(os.getenv("USHER_BENCH_API_D") .. "/report.lua")

local path, ticket_type, tag
local n = 0

function init(args)
    path = "/v1/events/" .. args[1] .. "/registrations"
    ticket_type = args[2]
    tag = args[3]
end

function request()
    n = n + 1
    local body = string.format(
        '{"ticket_type_id":%s,"name":"Wrk Bench","email":"wrk-%s-%d-%d@bench.example.org"}',
        ticket_type, tag, thread_id, n)
    return wrk.format("POST", path, { ["Content-Type"] = "application/json" }, body)
end
