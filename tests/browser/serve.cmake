# The live explorer's page (web/serve/) in headless chromium against the real
# `attnviz serve` (label browser): tests/browser/serve.test.mjs. The long-input
# check (4,096 tokens, 12 layers; about 0.8 GB in the server) runs on its own,
# labelled slow too, on a random-weight model make_long_model.py writes.
find_program(NODE_PROGRAM node)
if(NODE_PROGRAM)
  set(attnviz_serve_dir ${CMAKE_BINARY_DIR}/serve-page)
  add_test(NAME browser_serve
           COMMAND ${NODE_PROGRAM} ${PROJECT_SOURCE_DIR}/tests/browser/serve.test.mjs
                   $<TARGET_FILE:attnviz_cli> ${PROJECT_SOURCE_DIR}/models/demo
                   ${ATTNVIZ_TEST_DATA}/model/tiny-safetensors - ${attnviz_serve_dir}/work)
  set_tests_properties(browser_serve PROPERTIES LABELS browser TIMEOUT 400 RUN_SERIAL TRUE)
  add_test(NAME serve_long_model
           COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/browser/make_long_model.py
                   ${PROJECT_SOURCE_DIR}/models/demo ${attnviz_serve_dir}/long-model 1)
  set_tests_properties(serve_long_model PROPERTIES FIXTURES_SETUP serve_long_model LABELS "browser;slow")
  add_test(NAME browser_serve_long
           COMMAND ${NODE_PROGRAM} ${PROJECT_SOURCE_DIR}/tests/browser/serve.test.mjs
                   $<TARGET_FILE:attnviz_cli> ${PROJECT_SOURCE_DIR}/models/demo
                   ${ATTNVIZ_TEST_DATA}/model/tiny-safetensors ${attnviz_serve_dir}/long-model
                   ${attnviz_serve_dir}/work-long)
  set_tests_properties(browser_serve_long PROPERTIES FIXTURES_REQUIRED serve_long_model
                       LABELS "browser;slow" TIMEOUT 600 RUN_SERIAL TRUE)
endif()
