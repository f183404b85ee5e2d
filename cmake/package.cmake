# `cpack -G DEB` in the build directory: libmk-dev (the `dev` component of cmake/install.cmake)
# and mk-tools (the `tools` component), for Debian 12 (docs/building.md, "Debian packages").
set(CPACK_PACKAGE_NAME mk)
set(CPACK_PACKAGE_VENDOR "The mk authors")
set(CPACK_PACKAGE_CONTACT "The mk authors <mk@localhost>")
# CPack puts a summary that is not its default before every package's description; each package
# here has its own first line instead.
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_NAME} built using CMake")
# The packages install where this build was configured to (the presets: /usr), which is where
# the libraries look for the hwloc probe (src/skb/CMakeLists.txt).
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_COMPONENTS_ALL dev tools)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
# dpkg-shlibdeps adds the shared libraries the probe and the tools run with.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)

# CPack indents the lines after the first and turns an empty one into " .".
set(mk_deb_about [[
mk runs one multicore machine as a network of cores: a pinned user-space
kernel per core, explicit messages over NUMA-local shared-memory rings,
replicated state kept consistent by agreement, and a System Knowledge Base
fed by hwloc that chooses transports, routes and placement.]])

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libmk-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_DESCRIPTION
  "${PROJECT_DESCRIPTION} (library and headers)\n${mk_deb_about}\n\nThis package holds the headers, the libraries (mk::mk and mk::sim for CMake,\nmk and mk-sim for pkg-config) and mk's hwloc probe.")
# What a program linking the static libraries needs besides the headers, which include only the
# C++ library: the libraries mk links and the pkg-config files its CMake package and mk.pc read.
# The static libraries hold calls into the fmt they were built with: the same major version.
math(EXPR mk_fmt_next_major "${fmt_VERSION_MAJOR} + 1")
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
  "libnuma-dev, libhwloc-dev, liburing-dev, libfmt-dev (>= ${fmt_VERSION_MAJOR}.${fmt_VERSION_MINOR}), libfmt-dev (<< ${mk_fmt_next_major}), pkg-config | pkgconf")

set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME mk-tools)
set(CPACK_DEBIAN_TOOLS_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_TOOLS_DESCRIPTION
  "${PROJECT_DESCRIPTION} (tools)\n${mk_deb_about}\n\nThis package holds mk-bench, mk's benchmarks, and mk-skb, which prints the\nmachine as mk sees it.")
# mk-skb loads topology files through the hwloc probe, which libmk-dev holds.
set(CPACK_DEBIAN_TOOLS_PACKAGE_DEPENDS "libmk-dev (= ${PROJECT_VERSION})")

include(CPack)
