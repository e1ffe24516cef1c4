# attnviz serve: its sources in app/serve/, cpp-httplib, and its page
# (web/serve/) embedded at build time (cmake/embed_web.cmake).
file(GLOB attnviz_serve_sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/app/serve/*.cpp)
attnviz_embed_web(TARGET attnviz_cli DIR web/serve NAMESPACE attnviz::serve
                  STRINGS page_html=serve.html page_css=*.css page_js=*.js)
target_sources(attnviz_cli PRIVATE ${attnviz_serve_sources})
target_include_directories(attnviz_cli PRIVATE ${PROJECT_SOURCE_DIR}/app)
target_link_libraries(attnviz_cli PRIVATE PkgConfig::HTTPLIB)
