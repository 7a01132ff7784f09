# The Debian package (scripts/package.sh): cpack -G DEB over the install
# rules of cmake/install.cmake, into usher_VERSION_amd64.deb. dpkg-shlibdeps
# computes Depends: from the binaries' libraries; the rest is what they run
# or read (fonts, adduser for the postinst). packaging/ holds the maintainer
# scripts: postinst makes the user usher and the stores under /var/lib/usher,
# prerm stops the units on removal, postrm deletes the stores on purge; and
# what Debian asks of every package: a copyright file, a changelog, manual
# pages (compressed here, at configure time) and lintian's overrides, each
# saying why. tests/install/test_install.sh runs lintian on the result.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME usher)
set(CPACK_PACKAGE_VENDOR "Usher")
set(CPACK_PACKAGE_CONTACT "Usher maintainers <usher@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "event registration platform: job queue, workers and HTTP API")
set(CPACK_PACKAGE_DESCRIPTION "Usher runs an event platform on PostgreSQL and Redis. usher-api serves
registrations, check-in and the admin API, usher-worker runs the job pools
(emails, PDF tickets, webhooks, search indexing, reports), and usherctl
migrates the database and operates the queues. With systemd units.")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser, fonts-dejavu-core")
# search serve / replicate exec Xapian's daemons; TLS to SMTP relays and webhooks.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "xapian-tools, ca-certificates")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "postgresql-15, redis-server")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/postinst ${PROJECT_SOURCE_DIR}/packaging/prerm
    ${PROJECT_SOURCE_DIR}/packaging/postrm ${PROJECT_SOURCE_DIR}/packaging/conffiles)

# usher_gzip(SRC DEST): DEST = gzip -9n SRC, again whenever SRC changes.
function(usher_gzip src dest)
    execute_process(COMMAND gzip -9n -c ${src} OUTPUT_FILE ${dest} RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "gzip ${src}: ${rc}")
    endif()
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${src})
endfunction()

set(USHER_PACKAGING_OUT ${PROJECT_BINARY_DIR}/packaging)
file(MAKE_DIRECTORY ${USHER_PACKAGING_OUT})
foreach(page usher-api usher-worker usherctl)
    usher_gzip(${PROJECT_SOURCE_DIR}/packaging/man/${page}.1 ${USHER_PACKAGING_OUT}/${page}.1.gz)
    install(FILES ${USHER_PACKAGING_OUT}/${page}.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
endforeach()
usher_gzip(${PROJECT_SOURCE_DIR}/packaging/changelog ${USHER_PACKAGING_OUT}/changelog.gz)
install(FILES ${USHER_PACKAGING_OUT}/changelog.gz packaging/copyright
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES packaging/lintian-overrides DESTINATION ${CMAKE_INSTALL_DATADIR}/lintian/overrides
        RENAME usher)
include(CPack)
