# The search index: Xapian behind the C API of xapian_wrap.h (index.document
# and the API's search). The only C++ in Usher; C programs that link
# usher_handlers need the C++ runtime, hence stdc++ in its link interface.
pkg_check_modules(XAPIAN REQUIRED IMPORTED_TARGET xapian-core)
target_sources(usher_handlers PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/handlers/xapian_wrap.cc)
target_link_libraries(usher_handlers PUBLIC PkgConfig::XAPIAN stdc++)
