# `cmake --build <dir> --target docs`: the API reference of include/mk by Doxygen, into
# <dir>/docs/html. A public name without a doc comment fails the build; the detail namespaces
# are not public API and are left out (docs/Doxyfile.in).
find_program(MK_DOXYGEN doxygen)
if(MK_DOXYGEN)
  configure_file(docs/Doxyfile.in ${PROJECT_BINARY_DIR}/Doxyfile @ONLY)
  add_custom_target(docs
    COMMAND ${MK_DOXYGEN} ${PROJECT_BINARY_DIR}/Doxyfile
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    COMMENT "Doxygen: the API reference of include/mk, into ${PROJECT_BINARY_DIR}/docs/html"
    VERBATIM)
else()
  message(STATUS "doxygen not found: the docs target will fail (scripts/setup.sh installs it)")
  add_custom_target(docs
    COMMAND ${CMAKE_COMMAND} -E echo
            "docs: doxygen is not installed (apt-get install doxygen, or run scripts/setup.sh), then configure again"
    COMMAND ${CMAKE_COMMAND} -E false
    VERBATIM)
endif()
