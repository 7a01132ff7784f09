-- GET PATH [with "Authorization: Bearer TOKEN"]: event details, content
-- downloads and the hello-world ceiling.  wrk ... -s get.lua URL -- PATH [TOKEN]
dofile(os.getenv("USHER_BENCH_API_D") .. "/report.lua")

function init(args)
    wrk.path = args[1]
    if args[2] ~= nil then
        wrk.headers["Authorization"] = "Bearer " .. args[2]
    end
end
