# The CLI tests run a fake hub (cpp-httplib) for `attnviz download`.
if(TARGET test_app)
  target_link_libraries(test_app PRIVATE PkgConfig::HTTPLIB)
endif()
