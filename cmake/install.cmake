# What `cmake --install` puts under the prefix (docs/building.md, "Installing"), in two
# components: `dev` (headers, libraries, the hwloc probe, the CMake package and mk.pc) and
# `tools` (mk-bench, mk-skb). cmake/package.cmake makes a Debian package of each.
include(CMakePackageConfigHelpers)

set(mk_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/mk)

install(DIRECTORY include/mk DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)
install(TARGETS mk mk_skb mk_transport mk_runtime mk_sim mk_replica mk_services
  EXPORT mkTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT dev)
# Where hwloc_probe.cc looks for it first (MK_HWLOC_PROBE_INSTALLED_PATH, src/skb).
install(TARGETS mk-hwloc-probe DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/mk COMPONENT dev)
if(MK_BUILD_BENCH)
  install(TARGETS mk-bench DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT tools)
  # Where mk-bench --profile NAME looks when the source tree is not there (bench/CMakeLists.txt).
  install(DIRECTORY bench/profiles/ DESTINATION ${CMAKE_INSTALL_DATADIR}/mk/profiles
          COMPONENT tools)
endif()
install(TARGETS mk-skb DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT tools)

# The CMake package: find_package(mk) gives mk::mk, one target per layer and mk::sim.
install(EXPORT mkTargets NAMESPACE mk:: DESTINATION ${mk_cmake_dir} COMPONENT dev)
configure_package_config_file(cmake/mkConfig.cmake.in ${PROJECT_BINARY_DIR}/mkConfig.cmake
  INSTALL_DESTINATION ${mk_cmake_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/mkConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/mkConfig.cmake ${PROJECT_BINARY_DIR}/mkConfigVersion.cmake
  DESTINATION ${mk_cmake_dir} COMPONENT dev)

# pkg-config: mk.pc is mk::mk, mk-sim.pc adds the simulator. Static libraries need their
# dependencies on every link line, so they are public requirements then (a plain
# `pkg-config --libs mk` links); shared libraries carry them, so they are private.
if(BUILD_SHARED_LIBS)
  set(mk_pc_requires Requires.private)
else()
  set(mk_pc_requires Requires)
endif()
# The prefix is found from where the file is, so `cmake --install --prefix DIR` works.
file(RELATIVE_PATH mk_pc_to_prefix ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" mk_pc_to_prefix "${mk_pc_to_prefix}")
foreach(pc mk mk-sim)
  configure_file(cmake/${pc}.pc.in ${PROJECT_BINARY_DIR}/${pc}.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/${pc}.pc
    DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)
endforeach()

# The license, where Debian looks for each package's copyright.
install(FILES LICENSE DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/libmk-dev
  RENAME copyright COMPONENT dev)
install(FILES LICENSE DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/mk-tools
  RENAME copyright COMPONENT tools)
