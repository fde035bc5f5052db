# The Debian package: `ninja -C build imbridge-deb` writes
# build/packages/imbridge_<version>_amd64.deb (not built by default).
#
# What it holds is deploy/install.cmake's install rules with the prefix /usr
# (binaries stripped, dependencies from dpkg-shlibdeps), plus the maintainer
# scripts in deploy/debian/: an `imbridge` system user, /var/lib/imbridge
# (imbridge, 0700), /etc/imbridge/credentials with a generated admin and
# adapter token; no service is ever started that was not enabled before.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME imbridge)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "TeamSpirit")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "cross-messenger bridge: router, adapters and imbridgectl")
set(CPACK_PACKAGE_DESCRIPTION
  "imbridge mirrors channels between TeamSpirit, Slack, Telegram and generic
webhooks. The router keeps every event durably in SQLite; one adapter process
per messenger attaches to it over gRPC. Nothing is started on install: write
/etc/imbridge/router.yaml (see router.example.yaml) and enable the units.")
set(CPACK_PACKAGE_CONTACT "imbridge maintainers <imbridge@teamspirit.invalid>")
set(CPACK_OUTPUT_FILE_PREFIX ${PROJECT_BINARY_DIR}/packages)
set(CPACK_STRIP_FILES ON)
# Install with DESTDIR and the real prefix, so that deploy/install_layout.cmake
# sees /usr (the units name /usr/bin, the configs go to /etc).
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE amd64)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# useradd (passwd), the messengers' CA certificates.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "passwd, ca-certificates")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${PROJECT_SOURCE_DIR}/deploy/debian/conffiles
  ${PROJECT_SOURCE_DIR}/deploy/debian/postinst
  ${PROJECT_SOURCE_DIR}/deploy/debian/prerm
  ${PROJECT_SOURCE_DIR}/deploy/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)

add_custom_target(imbridge-deb
  COMMAND ${CMAKE_CPACK_COMMAND} --config ${PROJECT_BINARY_DIR}/CPackConfig.cmake
  WORKING_DIRECTORY ${PROJECT_BINARY_DIR}
  COMMENT "Building packages/imbridge_${PROJECT_VERSION}_amd64.deb"
  VERBATIM)
add_dependencies(imbridge-deb ${IMBRIDGE_OPERATOR_BINARIES})
