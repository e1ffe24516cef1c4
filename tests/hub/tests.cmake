# The fake hub in the hub tests is a cpp-httplib server.
if(TARGET test_hub)
  target_link_libraries(test_hub PRIVATE PkgConfig::HTTPLIB)
endif()
