# Messages to attendees and event cancellations: the fan-out in batches
# (message.fanout), the email.send side of a message, and the formatting
# subset of a message body rendered to HTML.
target_sources(usher_handlers PRIVATE ${CMAKE_CURRENT_LIST_DIR}/message_fanout.c
                                      ${CMAKE_CURRENT_LIST_DIR}/message_mail.c
                                      ${CMAKE_CURRENT_LIST_DIR}/message_format.c)
