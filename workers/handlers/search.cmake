# The search index: Xapian behind the C API of xapian_wrap.h, a library of
# its own because both index.document (usher_handlers) and usher-api's
# search link it. The only C++ in Usher; C programs that link it need the
# C++ runtime, hence stdc++ in its link interface.
pkg_check_modules(XAPIAN REQUIRED IMPORTED_TARGET xapian-core)
add_library(usher_search STATIC ${CMAKE_CURRENT_SOURCE_DIR}/handlers/xapian_wrap.cc)
target_include_directories(usher_search PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/handlers)
target_link_libraries(usher_search PUBLIC usher PkgConfig::XAPIAN stdc++)
target_link_libraries(usher_handlers PUBLIC usher_search)
