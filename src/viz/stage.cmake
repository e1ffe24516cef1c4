# The payload's deflate streams come from libdeflate (zlib format, faster than zlib).
pkg_check_modules(LIBDEFLATE REQUIRED IMPORTED_TARGET libdeflate)
target_link_libraries(attnviz_viz PUBLIC PkgConfig::LIBDEFLATE)

# Embeds web/ (the page's own JavaScript and CSS) into attnviz_viz at build
# time: embed_web.cmake writes web_assets.cpp with each file as a raw string,
# and reruns whenever a file in web/ changes.
file(GLOB attnviz_web_files CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/web/*.js
     ${PROJECT_SOURCE_DIR}/web/*.css)
set(attnviz_web_assets ${CMAKE_BINARY_DIR}/generated/viz/web_assets.cpp)
add_custom_command(
  OUTPUT ${attnviz_web_assets}
  COMMAND ${CMAKE_COMMAND} -DWEB_DIR=${PROJECT_SOURCE_DIR}/web -DOUTPUT=${attnviz_web_assets}
          -P ${CMAKE_CURRENT_LIST_DIR}/embed_web.cmake
  DEPENDS ${attnviz_web_files} ${CMAKE_CURRENT_LIST_DIR}/embed_web.cmake
  COMMENT "Embedding web/ into attnviz_viz")
target_sources(attnviz_viz PRIVATE ${attnviz_web_assets})

# The version written into .npz exports (their provenance).
target_compile_definitions(attnviz_viz PRIVATE ATTNVIZ_VIZ_VERSION="${PROJECT_VERSION}")

# The report page of `attnviz heads` (web/heads/), embedded the same way.
file(GLOB attnviz_heads_web_files CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/web/heads/*.js
     ${PROJECT_SOURCE_DIR}/web/heads/*.css)
set(attnviz_heads_assets ${CMAKE_BINARY_DIR}/generated/viz/heads_report_assets.cpp)
add_custom_command(
  OUTPUT ${attnviz_heads_assets}
  COMMAND ${CMAKE_COMMAND} -DWEB_DIR=${PROJECT_SOURCE_DIR}/web/heads -DOUTPUT=${attnviz_heads_assets}
          -P ${CMAKE_CURRENT_LIST_DIR}/embed_heads_report.cmake
  DEPENDS ${attnviz_heads_web_files} ${CMAKE_CURRENT_LIST_DIR}/embed_heads_report.cmake
  COMMENT "Embedding web/heads/ into attnviz_viz")
target_sources(attnviz_viz PRIVATE ${attnviz_heads_assets})
