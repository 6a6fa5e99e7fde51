# Helpers that give every nodelink target the same shape: one static library per module, alias
# nodelink::<module>, warnings for our code only, EVP-only OpenSSL.

set(NODELINK_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Woverloaded-virtual
    -Wformat=2 -Wimplicit-fallthrough -Wcast-qual -Wmissing-declarations)
if(NODELINK_WERROR)
  list(APPEND NODELINK_WARNINGS -Werror)
endif()

# Applies our warning flags and OpenSSL API level to a target we own.
function(nodelink_own_code target)
  target_compile_options(${target} PRIVATE ${NODELINK_WARNINGS})
  # Deprecated low-level OpenSSL APIs do not compile in our code (DESIGN: EVP APIs only).
  target_compile_definitions(${target} PRIVATE OPENSSL_API_COMPAT=30000 OPENSSL_NO_DEPRECATED)
endfunction()

set_property(GLOBAL PROPERTY NODELINK_MODULES "")

# nodelink_add_module(<name> SOURCES ... [PUBLIC_DEPS ...] [PRIVATE_DEPS ...])
# Creates nodelink_<name> (alias nodelink::<name>). Module code includes "<module>/file.h" from
# src/; applications include <nodelink/...> from include/.
function(nodelink_add_module name)
  cmake_parse_arguments(M "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  set(target nodelink_${name})
  add_library(${target} STATIC ${M_SOURCES})
  add_library(nodelink::${name} ALIAS ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${name})
  target_include_directories(${target} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/src>
    $<INSTALL_INTERFACE:include>)
  target_link_libraries(${target} PUBLIC ${M_PUBLIC_DEPS} PRIVATE ${M_PRIVATE_DEPS})
  nodelink_own_code(${target})
  set_property(GLOBAL APPEND PROPERTY NODELINK_MODULES ${target})
endfunction()

# nodelink_add_tool(<name> SOURCES ... DEPS ...): a thin main installed to bin/.
function(nodelink_add_tool name)
  cmake_parse_arguments(T "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_DEPS})
  nodelink_own_code(${name})
  set_property(GLOBAL APPEND PROPERTY NODELINK_TOOLS ${name})
endfunction()

# Links tcmalloc (Debian's libgoogle-perftools-dev) into a daemon when it is installed. Measured
# (bench/RESULTS.md): the hub's many small per-connection allocations take ~20 % less memory
# (10,000 idle participants: 1,021 instead of 1,236 MiB), and a participant moving 1 MiB
# messages takes a third of the page faults that glibc malloc's trimming and re-growing cost
# (on VMs that hand free memory back to the host each fault is expensive). Not with sanitizers,
# which bring their own allocator.
function(nodelink_link_tcmalloc name)
  if(NODELINK_SANITIZE OR CMAKE_CXX_FLAGS MATCHES "-fsanitize")
    return()
  endif()
  find_library(NODELINK_TCMALLOC_LIBRARY NAMES tcmalloc_minimal)
  if(NODELINK_TCMALLOC_LIBRARY)
    target_link_libraries(${name} PRIVATE ${NODELINK_TCMALLOC_LIBRARY})
  else()
    message(STATUS "${name}: tcmalloc_minimal not found; it uses glibc malloc")
  endif()
endfunction()
