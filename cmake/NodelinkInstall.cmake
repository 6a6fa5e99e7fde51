# `cmake --install` puts headers, libraries, tools and a package config in the prefix, so that a
# separate project can find_package(nodelink) and link nodelink::nodelink.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

get_property(modules GLOBAL PROPERTY NODELINK_MODULES)
get_property(tools GLOBAL PROPERTY NODELINK_TOOLS)

# The umbrella target an application links.
add_library(nodelink INTERFACE)
add_library(nodelink::nodelink ALIAS nodelink)
target_link_libraries(nodelink INTERFACE ${modules})
set_target_properties(nodelink PROPERTIES EXPORT_NAME nodelink)

install(TARGETS nodelink nodelink_proto ${modules} EXPORT nodelinkTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
if(tools)
  install(TARGETS ${tools} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
install(DIRECTORY include/nodelink DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT nodelinkTargets NAMESPACE nodelink::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/nodelink)
configure_package_config_file(cmake/nodelinkConfig.cmake.in
  ${PROJECT_BINARY_DIR}/nodelinkConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/nodelink)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/nodelinkConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/nodelinkConfig.cmake ${PROJECT_BINARY_DIR}/nodelinkConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/nodelink)
