# attnviz serve: its sources in app/serve/, cpp-httplib, and its page
# (web/serve/) embedded at build time by embed_page.cmake, rerun whenever a
# file there changes.
file(GLOB attnviz_serve_sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/app/serve/*.cpp)
file(GLOB attnviz_page_files CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/web/serve/*)
set(attnviz_page_assets ${CMAKE_BINARY_DIR}/generated/serve/page_assets.cpp)
add_custom_command(
  OUTPUT ${attnviz_page_assets}
  COMMAND ${CMAKE_COMMAND} -DWEB_DIR=${PROJECT_SOURCE_DIR}/web/serve -DOUTPUT=${attnviz_page_assets}
          -P ${CMAKE_CURRENT_LIST_DIR}/embed_page.cmake
  DEPENDS ${attnviz_page_files} ${CMAKE_CURRENT_LIST_DIR}/embed_page.cmake
  COMMENT "Embedding web/serve/ into attnviz")
target_sources(attnviz_cli PRIVATE ${attnviz_serve_sources} ${attnviz_page_assets})
target_include_directories(attnviz_cli PRIVATE ${PROJECT_SOURCE_DIR}/app)
target_link_libraries(attnviz_cli PRIVATE PkgConfig::HTTPLIB)
