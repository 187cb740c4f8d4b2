# The Debian package: `cpack` (or ./scripts/package) in a build directory writes
# packages/tagwarden_<version>_<arch>.deb with the binary in /usr/bin, a man page generated from
# `tagwarden --help` (help2man), and Depends computed by dpkg-shlibdeps from the libraries it links.
# Shell completion: CLI11 has no completion generator, so none is shipped.

include(GNUInstallDirs)

# `install` and cpack do not build `all` first (the unit tests are not packaged): scripts/package builds
# the two targets the package holds, tagwarden and tagwarden_manpage.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

install(TARGETS tagwarden RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# tagwarden.1.gz from --help and every command's --help (cmake/manpage.sh runs help2man).
find_program(TAGWARDEN_HELP2MAN help2man)
if(TAGWARDEN_HELP2MAN)
  set(TAGWARDEN_MANPAGE ${CMAKE_CURRENT_BINARY_DIR}/man/tagwarden.1.gz)
  add_custom_command(
    OUTPUT ${TAGWARDEN_MANPAGE}
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/cmake/manpage.sh ${TAGWARDEN_HELP2MAN} $<TARGET_FILE:tagwarden> ${TAGWARDEN_MANPAGE}
    DEPENDS tagwarden ${CMAKE_CURRENT_SOURCE_DIR}/cmake/manpage.sh
    COMMENT "Generating the man page tagwarden.1 with help2man"
    VERBATIM)
  add_custom_target(tagwarden_manpage ALL DEPENDS ${TAGWARDEN_MANPAGE})
  install(FILES ${TAGWARDEN_MANPAGE} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
else()
  message(WARNING "help2man not found: the package cannot be built (apt-get install help2man, or scripts/bootstrap)")
  install(CODE "message(FATAL_ERROR \"help2man is missing: the man page tagwarden.1 cannot be generated (apt-get install help2man)\")")
endif()
install(FILES ${CMAKE_CURRENT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME tagwarden)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "tagwarden maintainers <tagwarden@users.noreply.github.com>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "push images to OCI registries (Amazon ECR first) and refuse the pushes that break releases")
string(CONCAT CPACK_PACKAGE_DESCRIPTION
    "tagwarden replaces `docker push` in CI: it pushes images to OCI registries over HTTP with no Docker daemon, "
    "takes a lock per tag, writes immutable environment tags all or none, verifies every blob, promotes without "
    "pulling a layer and refuses pushes to ECR repositories that are near their quota, have no lifecycle policy, "
    "or have one that would expire what is pushed or protected.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR}/packages)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # tagwarden_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # Depends from dpkg-shlibdeps: libc6, libcurl4, libssl3, libyaml-cpp, ...
# libarchive is loaded with dlopen (only archive sources need it), so dpkg-shlibdeps cannot see it.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libarchive13 (>= 3.6)")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "ca-certificates")
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS OFF)
include(CPack)
