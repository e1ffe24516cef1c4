# The CLI tests run a fake hub (cpp-httplib) for `attnviz download`.
if(TARGET test_app)
  target_link_libraries(test_app PRIVATE PkgConfig::HTTPLIB)
endif()

# The seed workflow's page in headless chromium (label "browser"): the head
# view's sentence-pair filters and the model view, from `attnviz view`.
find_program(NODE_PROGRAM node)
if(NODE_PROGRAM)
  add_test(NAME cli_seed_page
           COMMAND ${NODE_PROGRAM} ${PROJECT_SOURCE_DIR}/tests/app/seed_page.test.mjs
                   $<TARGET_FILE:attnviz_cli> ${ATTNVIZ_TEST_DATA}/app/bert-tiny-30522
                   ${ATTNVIZ_TEST_DATA}/hf/bert-base-uncased)
  set_tests_properties(cli_seed_page PROPERTIES LABELS browser TIMEOUT 120)
endif()

# attnviz serve's page in chromium (tests/browser/serve.test.mjs).
include(${PROJECT_SOURCE_DIR}/tests/browser/serve.cmake)

# `attnviz heads` on 10,000 held-out texts of the demo corpus, and docs/demo-model.md's
# claims against its statistics (label slow: about a minute).
add_test(NAME cli_heads_corpus COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/app/heads_corpus_test.py)
set_tests_properties(cli_heads_corpus PROPERTIES LABELS "app;slow" TIMEOUT 1200 ENVIRONMENT
  "ATTNVIZ_CLI=$<TARGET_FILE:attnviz_cli>;ATTNVIZ_SOURCE_DIR=${PROJECT_SOURCE_DIR};HF_HUB_OFFLINE=1")
