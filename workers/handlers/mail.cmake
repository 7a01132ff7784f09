# Email building blocks: templates, MIME messages and SMTP delivery
# (libesmtp, with an OpenSSL context of our own for STARTTLS), with libsodium
# for base64 and hashing.
pkg_check_modules(LIBESMTP REQUIRED IMPORTED_TARGET libesmtp-1.0)
pkg_check_modules(LIBSODIUM REQUIRED IMPORTED_TARGET libsodium)
pkg_check_modules(OPENSSL REQUIRED IMPORTED_TARGET openssl)
target_sources(usher_handlers PRIVATE ${CMAKE_CURRENT_LIST_DIR}/mail_template.c
                                      ${CMAKE_CURRENT_LIST_DIR}/mail_message.c
                                      ${CMAKE_CURRENT_LIST_DIR}/mail_send.c
                                      ${CMAKE_CURRENT_LIST_DIR}/mail_tls.c)
target_link_libraries(usher_handlers PUBLIC PkgConfig::LIBESMTP PkgConfig::LIBSODIUM
                                            PkgConfig::OPENSSL)
