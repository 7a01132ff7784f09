# Schedules anchored to an event or a session: the job that fires one when
# it comes due (a message to the attendees, or the door list's report).
target_sources(usher_handlers PRIVATE ${CMAKE_CURRENT_LIST_DIR}/schedule_fire.c)
