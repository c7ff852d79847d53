# `cmake --install build --prefix P`: the command-line program, the C++ SDK (public headers,
# libraries, a CMake package and a pkg-config file), the configs and the Python module — and
# `cpack -G DEB` (scripts/package-deb.sh) packs the same tree as a Debian package.
#
# A consumer:
#   find_package(centermask CONFIG REQUIRED)           # finds LibTorch, OpenCV, fmt... itself
#   target_link_libraries(app PRIVATE centermask::centermask)
# or `pkg-config --cflags --libs centermask`.

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(CENTERMASK_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/centermask")

# The SDK: the libraries behind one target, centermask::centermask.
add_library(centermask_sdk INTERFACE)
set_target_properties(centermask_sdk PROPERTIES EXPORT_NAME centermask)
target_link_libraries(centermask_sdk INTERFACE centermask_core)
set(centermask_sdk_libraries centermask_eval centermask_core)
if(CENTERMASK_WITH_TORCH)
  target_link_libraries(centermask_sdk INTERFACE centermask_engine centermask_export)
  list(APPEND centermask_sdk_libraries centermask_model centermask_engine centermask_export)
endif()
add_library(centermask::centermask ALIAS centermask_sdk)

install(TARGETS centermask_sdk ${centermask_sdk_libraries} EXPORT centermaskTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT sdk
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT sdk
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/centermask
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT sdk)
install(EXPORT centermaskTargets NAMESPACE centermask:: DESTINATION ${CENTERMASK_CMAKE_DIR}
  COMPONENT sdk)

# What the config file finds for the consumer: what the libraries link.
set(CENTERMASK_PACKAGE_WITH_TORCH ${CENTERMASK_WITH_TORCH})
set(CENTERMASK_PACKAGE_WITH_ONNX ${CENTERMASK_ONNX_EXPORT})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/centermaskConfig.cmake.in
  ${CMAKE_BINARY_DIR}/centermaskConfig.cmake INSTALL_DESTINATION ${CENTERMASK_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/centermaskConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/centermaskConfig.cmake
  ${CMAKE_BINARY_DIR}/centermaskConfigVersion.cmake
  DESTINATION ${CENTERMASK_CMAKE_DIR} COMPONENT sdk)

# pkg-config: our static libraries, then what they link (LibTorch's libraries by path, the
# rest by their own .pc files).
set(centermask_pc_libs "")
foreach(library IN LISTS centermask_sdk_libraries)
  string(PREPEND centermask_pc_libs "-l${library} ")
endforeach()
set(centermask_pc_requires "opencv4 fmt")
set(centermask_pc_cflags "")
set(centermask_pc_torch_libs "")
if(CENTERMASK_WITH_TORCH)
  string(APPEND centermask_pc_requires " yaml-cpp")
  foreach(dir IN LISTS TORCH_INCLUDE_DIRS)
    string(APPEND centermask_pc_cflags " -I${dir}")
  endforeach()
  string(APPEND centermask_pc_cflags " ${TORCH_CXX_FLAGS}")
  # LibTorch's libraries from its folder: torch, torch_cpu, c10 (and the CUDA ones where built).
  get_filename_component(torch_library_dir "${TORCH_LIBRARY}" DIRECTORY)
  string(APPEND centermask_pc_torch_libs " -L${torch_library_dir} -Wl,-rpath,${torch_library_dir}")
  foreach(library torch torch_cpu torch_cuda c10 c10_cuda)
    if(EXISTS "${torch_library_dir}/lib${library}.so")
      string(APPEND centermask_pc_torch_libs " -l${library}")
    endif()
  endforeach()
  if(CENTERMASK_PACKAGE_WITH_ONNX)
    string(APPEND centermask_pc_torch_libs " -lonnx -lonnx_proto -lprotobuf")
  endif()
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/centermask.pc.in ${CMAKE_BINARY_DIR}/centermask.pc
  @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/centermask.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT sdk)

# The program (both halves: `centermask` hands model commands to `centermask-torch` beside it)
# and the configs it is used with.
install(TARGETS centermask RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT program)
if(TARGET centermask-torch)
  install(TARGETS centermask-torch RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT program)
endif()
install(DIRECTORY ${PROJECT_SOURCE_DIR}/configs
  DESTINATION ${CMAKE_INSTALL_DATADIR}/centermask COMPONENT program)
install(FILES ${PROJECT_SOURCE_DIR}/examples/predict_image/CMakeLists.txt
  ${PROJECT_SOURCE_DIR}/examples/predict_image/main.cpp
  DESTINATION ${CMAKE_INSTALL_DATADIR}/centermask/examples/predict_image COMPONENT sdk)

# The Python module where the prefix's interpreter looks: Debian's python3 reads
# /usr/lib/python3/dist-packages for /usr and /usr/local/lib/python3.X/dist-packages for
# /usr/local. -DCENTERMASK_PYTHON_INSTALL_DIR=... (relative to the prefix) overrides.
if(TARGET centermask_python)
  set(CENTERMASK_PYTHON_INSTALL_DIR "" CACHE STRING
    "where the Python module installs, relative to the prefix (empty: the prefix's dist-packages)")
  set(python_install_dir "${CENTERMASK_PYTHON_INSTALL_DIR}")
  if(python_install_dir STREQUAL "")
    if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
      set(python_install_dir "lib/python3/dist-packages")
    else()
      set(python_install_dir
        "lib/python${Python_VERSION_MAJOR}.${Python_VERSION_MINOR}/dist-packages")
    endif()
  endif()
  install(TARGETS centermask_python LIBRARY DESTINATION ${python_install_dir} COMPONENT python)
endif()

# The Debian package: `cpack -G DEB` in the build folder (scripts/package-deb.sh). Its
# dependencies are Debian's runtime packages of what the program links, found by dpkg-shlibdeps.
set(CPACK_PACKAGE_NAME centermask)
set(CPACK_PACKAGE_VENDOR "CenterMask-C++")
set(CPACK_PACKAGE_CONTACT "CenterMask-C++ developers <centermask@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "single-shot instance segmentation (CenterMask, PolarMask, CenterMask-FCOS) in C++")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# Debian's LibTorch multiplies matrices with the BLAS that is installed: OpenBLAS's threaded
# one is what makes it fast (several times the reference BLAS on the CPU recipe).
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libopenblas0-pthread")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "python3-numpy")
# The SDK's headers and CMake package need the -dev packages to compile against.
set(CPACK_DEBIAN_PACKAGE_SUGGESTS
  "libtorch-dev, libopencv-dev, libfmt-dev, libyaml-cpp-dev, python3-numpy")
set(CPACK_PACKAGE_INSTALL_DIRECTORY centermask)
set(CPACK_SET_DESTDIR OFF)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
include(CPack)
