# The Debian package (scripts/package.sh): cpack -G DEB over the install
# rules of cmake/install.cmake, into usher_VERSION_amd64.deb. dpkg-shlibdeps
# computes Depends: from the binaries' libraries; the rest is what they run
# or read (fonts, adduser for the postinst). packaging/ holds the maintainer
# scripts: postinst makes the user usher and the stores under /var/lib/usher.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME usher)
set(CPACK_PACKAGE_VENDOR "Usher")
set(CPACK_PACKAGE_CONTACT "Usher maintainers <usher@localhost>")
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
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/packaging/postinst
                                       ${PROJECT_SOURCE_DIR}/packaging/conffiles)
include(CPack)
