# Run by `cmake --install` and cpack (install(SCRIPT) in CMakeLists.txt): writes the files that
# name installed paths, the example index and the systemd units, into GF_GEN from the prefix in
# force now, for the install(FILES) rules that follow. GF_BINDIR, GF_DATADIR (GNUInstallDirs,
# relative or absolute), GF_SRC and GF_GEN are set just before.
foreach(v GF_BINDIR GF_DATADIR)
  if(NOT IS_ABSOLUTE "${${v}}")
    set(${v} "${CMAKE_INSTALL_PREFIX}/${${v}}")
  endif()
endforeach()
set(CMAKE_INSTALL_FULL_BINDIR "${GF_BINDIR}")
set(GF_DATA_FULL "${GF_DATADIR}/getfile")
set(GF_EXAMPLE_INDEX "${GF_DATA_FULL}/locals.txt")
configure_file(${GF_SRC}/example/locals.txt.in ${GF_GEN}/locals.txt @ONLY)
foreach(unit simplecached webproxy simplecached@ webproxy@)
  configure_file(${GF_SRC}/systemd/${unit}.service.in ${GF_GEN}/${unit}.service @ONLY)
endforeach()
