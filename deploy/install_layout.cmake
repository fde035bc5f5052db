# Run by `cmake --install` (deploy/install.cmake): installs what depends on
# the install prefix, which is known only then.
#
# imbridge_install_layout(UNITS DIR CONFIGS FILES BINDIR DIR LIBDIR DIR DOCDIR DIR)
#   - every DIR/*.service into <prefix>/LIBDIR/systemd/system/, with the
#     binaries' and docs' paths (written for /usr/local) pointing at the
#     prefix;
#   - CONFIGS into <prefix>/etc/imbridge/, or /etc/imbridge/ when the prefix
#     is /usr (FHS: a package's configuration lives in /etc).
function(imbridge_install_layout)
  cmake_parse_arguments(ARG "" "UNITS;BINDIR;LIBDIR;DOCDIR" "CONFIGS" ${ARGN})
  set(prefix "${CMAKE_INSTALL_PREFIX}")
  set(root "$ENV{DESTDIR}")

  file(GLOB units "${ARG_UNITS}/*.service")
  set(unit_dir "${root}${prefix}/${ARG_LIBDIR}/systemd/system")
  file(MAKE_DIRECTORY "${unit_dir}")
  foreach(unit IN LISTS units)
    get_filename_component(name "${unit}" NAME)
    file(READ "${unit}" text)
    string(REPLACE "/usr/local/bin/" "${prefix}/${ARG_BINDIR}/" text "${text}")
    string(REPLACE "file:///usr/local/share/doc/imbridge/"
      "file://${prefix}/${ARG_DOCDIR}/" text "${text}")
    message(STATUS "Installing: ${unit_dir}/${name}")
    file(WRITE "${unit_dir}/${name}" "${text}")
  endforeach()

  # file(INSTALL) adds DESTDIR itself.
  if(prefix STREQUAL "/usr")
    set(config_dir "/etc/imbridge")
  else()
    set(config_dir "${prefix}/etc/imbridge")
  endif()
  file(INSTALL ${ARG_CONFIGS} DESTINATION "${config_dir}"
    FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endfunction()
