# Organizer reports (report.attendees, report.checkins): CSV or a PDF table,
# stored as documents. The PDF table and the document store come from pdf.cmake.
# Included by workers/CMakeLists.txt.
target_sources(usher_handlers PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/handlers/report_job.c
                                      ${CMAKE_CURRENT_SOURCE_DIR}/handlers/report_all.c
                                      ${CMAKE_CURRENT_SOURCE_DIR}/handlers/report_csv.c
                                      ${CMAKE_CURRENT_SOURCE_DIR}/handlers/report_output.c)
