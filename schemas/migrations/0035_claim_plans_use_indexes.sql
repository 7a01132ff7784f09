-- usher_claim (0020, 0034) plans each of its statements once per connection
-- (force_generic_plan). A worker that connects while usher_jobs holds few
-- rows (an idle system: completed jobs are deleted) gets plans for a table
-- of a few rows, a sequential scan and a sort for the walk and the fair step,
-- and keeps them for the life of the connection; when the spike comes, each
-- of those statements reads the whole backlog. EXPLAIN ANALYZE on 100,000
-- jobs with plans made on an empty table: 36 ms for one walk probe and 49 ms
-- for one partition's share, against 0.14 and 0.23 ms through
-- usher_jobs_claim_fair. bench/workers' warm phase (a pool started on an
-- empty queue, then 100,000 jobs; adaptive window capped at 64 per child):
-- claims of 305 jobs on average took 17.1 ms, 10,681 jobs/s; with this
-- setting 4.1 ms, 33,866 jobs/s (a pool started on the backlog: 6.7 ms,
-- 26,886 jobs/s). Every statement of the claim has an index made for it.
ALTER FUNCTION usher_claim(text[], integer, text, bigint, bigint, text[])
    SET enable_seqscan = off;
