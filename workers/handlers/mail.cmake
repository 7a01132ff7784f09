# Email building blocks: templates, MIME messages and SMTP delivery
# (libesmtp), with libsodium for base64 and hashing.
pkg_check_modules(LIBESMTP REQUIRED IMPORTED_TARGET libesmtp-1.0)
pkg_check_modules(LIBSODIUM REQUIRED IMPORTED_TARGET libsodium)
target_sources(usher_handlers PRIVATE ${CMAKE_CURRENT_LIST_DIR}/mail_template.c
                                      ${CMAKE_CURRENT_LIST_DIR}/mail_message.c
                                      ${CMAKE_CURRENT_LIST_DIR}/mail_send.c)
target_link_libraries(usher_handlers PUBLIC PkgConfig::LIBESMTP PkgConfig::LIBSODIUM)
