# Install rules (`cmake --install`) and the Debian package (`ninja imbridge-deb`,
# see deploy/package.cmake).
#
# FHS layout under CMAKE_INSTALL_PREFIX (GNUInstallDirs; the .deb uses /usr):
#   bin/                            every process an operator runs
#   lib/systemd/system/             the hardened units, naming bin/ above
#   share/doc/imbridge/             the docs; examples/: the example configs
#   share/imbridge/sandbox/web/     the sandbox's page (found from bin/../share)
#   etc/imbridge/*.example.yaml     the example configs (/etc/imbridge when the
#                                   prefix is /usr): examples, not live configs
include(GNUInstallDirs)

set(IMBRIDGE_OPERATOR_BINARIES
  imbridge-router
  imbridge-adapter-teamspirit
  imbridge-adapter-slack
  imbridge-adapter-telegram
  imbridge-adapter-webhook
  imbridge-adapter-bitrix24
  imbridge-adapter-chatlio
  imbridge-adapter-botsplash
  imbridgectl
  imbridge-sandbox)
foreach(binary IN LISTS IMBRIDGE_OPERATOR_BINARIES)
  if(NOT TARGET ${binary})
    message(FATAL_ERROR "deploy/install.cmake: no target ${binary}")
  endif()
endforeach()
install(TARGETS ${IMBRIDGE_OPERATOR_BINARIES}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

set(IMBRIDGE_DEPLOY_DIR ${PROJECT_SOURCE_DIR}/deploy)
file(GLOB IMBRIDGE_EXAMPLE_CONFIGS ${IMBRIDGE_DEPLOY_DIR}/*.example.yaml
  ${IMBRIDGE_DEPLOY_DIR}/sandbox/*.example.yaml)
install(FILES ${IMBRIDGE_EXAMPLE_CONFIGS}
  DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

file(GLOB IMBRIDGE_DOCS ${PROJECT_SOURCE_DIR}/docs/*.md)
install(FILES ${IMBRIDGE_DOCS} ${PROJECT_SOURCE_DIR}/README.md
  DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/images
  DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/tools/sandbox/web/
  DESTINATION ${CMAKE_INSTALL_DATADIR}/imbridge/sandbox/web)

# What depends on the prefix given at install time (`cmake --install
# --prefix`, or /usr when CPack builds the package): the units name the
# installed binaries, and /usr puts the example configs in /etc.
install(CODE "
  include(\"${IMBRIDGE_DEPLOY_DIR}/install_layout.cmake\")
  imbridge_install_layout(
    UNITS \"${IMBRIDGE_DEPLOY_DIR}/systemd\"
    CONFIGS \"${IMBRIDGE_EXAMPLE_CONFIGS}\"
    BINDIR \"${CMAKE_INSTALL_BINDIR}\"
    LIBDIR lib
    DOCDIR \"${CMAKE_INSTALL_DOCDIR}\")
")

include(${IMBRIDGE_DEPLOY_DIR}/package.cmake)
