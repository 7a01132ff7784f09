-- Reads this thread's share of a file of ticket codes (every THREADS-th line,
-- starting at its own), for checkin.lua and code_get.lua.
function thread_codes(file, threads)
    local codes, i = {}, 0
    for line in io.lines(file) do
        if i % threads == thread_id - 1 then
            codes[#codes + 1] = line
        end
        i = i + 1
    end
    assert(#codes > 0, file .. " has no codes for thread " .. thread_id)
    return codes
end
