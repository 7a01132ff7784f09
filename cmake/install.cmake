# cmake --install: the layout that engine/install_paths.h compiles in and that
# systemd/'s units and README name (with the default prefix /usr):
#   /usr/bin                 usher-api, usher-worker, usherctl
#   /etc/usher               usher.conf, usher.env (secrets; root only)
#   /usr/share/usher         templates/, migrations/, schemas/ (the job payload
#                            schemas and openapi.yaml, for reference: the
#                            binaries embed the schemas and the dashboard)
#   /lib/systemd/system      the units (USHER_SYSTEMD_UNIT_DIR)
#   /usr/share/doc/usher     systemd/README.md, which the units' Documentation= names
# The stores under /var/lib/usher belong to the user usher: the package's
# postinst (packaging/postinst) makes them, or systemd/README.md's commands.
# The fonts are Debian's (fonts-dejavu-core, a dependency of the package).
pkg_get_variable(USHER_SYSTEMD_PC_UNIT_DIR systemd systemdsystemunitdir)
if(NOT USHER_SYSTEMD_PC_UNIT_DIR)
    set(USHER_SYSTEMD_PC_UNIT_DIR /lib/systemd/system)
endif()
set(USHER_SYSTEMD_UNIT_DIR ${USHER_SYSTEMD_PC_UNIT_DIR} CACHE PATH "Where the systemd units go")

install(TARGETS usher-api usher-worker usherctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# Absolute: GNUInstallDirs maps the prefix /usr to /etc, not /usr/etc.
install(FILES conf/usher.conf DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/usher)
install(FILES conf/usher.env DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/usher
        PERMISSIONS OWNER_READ OWNER_WRITE)

install(DIRECTORY conf/templates/ DESTINATION ${CMAKE_INSTALL_DATADIR}/usher/templates)
install(DIRECTORY schemas/migrations/ DESTINATION ${CMAKE_INSTALL_DATADIR}/usher/migrations
        FILES_MATCHING PATTERN "*.sql")
install(DIRECTORY schemas/jobs DESTINATION ${CMAKE_INSTALL_DATADIR}/usher/schemas
        FILES_MATCHING PATTERN "*.schema.json")
install(FILES schemas/openapi.yaml DESTINATION ${CMAKE_INSTALL_DATADIR}/usher/schemas)

install(FILES systemd/usher.target systemd/usher-api.service systemd/usher-worker@.service
              systemd/usher-search-server.service systemd/usher-search-replica.service
        DESTINATION ${USHER_SYSTEMD_UNIT_DIR})
install(FILES systemd/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR}/systemd)
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
