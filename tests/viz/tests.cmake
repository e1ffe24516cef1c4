# Browser tests of the HTML views (label "browser"). make_pages writes pages
# from the synthetic traces with JSON sidecars of their exact values; then
# tests/browser/views.test.mjs opens them in headless Debian chromium through
# playwright-core (installed by tools/setup into tests/browser/node_modules).
add_executable(make_pages ${PROJECT_SOURCE_DIR}/tests/browser/make_pages.cpp)
get_property(viz_closure GLOBAL PROPERTY ATTNVIZ_STAGE_CLOSURE_viz)
foreach(dep IN LISTS viz_closure)
  target_link_libraries(make_pages PRIVATE attnviz_${dep})
endforeach()
target_include_directories(make_pages PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)

set(attnviz_pages_dir ${CMAKE_BINARY_DIR}/browser-pages)
add_test(NAME browser_pages COMMAND make_pages ${attnviz_pages_dir})
set_tests_properties(browser_pages PROPERTIES FIXTURES_SETUP attnviz_pages LABELS browser)

find_program(NODE_PROGRAM node)
if(NODE_PROGRAM)
  add_test(NAME browser_views
           COMMAND ${NODE_PROGRAM} ${PROJECT_SOURCE_DIR}/tests/browser/views.test.mjs
                   ${attnviz_pages_dir} ${CMAKE_BINARY_DIR}/screenshots)
  set_tests_properties(browser_views PROPERTIES FIXTURES_REQUIRED attnviz_pages LABELS browser
                                                TIMEOUT 180)
  # Issue 14's acceptance: speed at 512 tokens, hidden views, exact numbers (printed values).
  add_test(NAME browser_acceptance
           COMMAND ${NODE_PROGRAM} ${PROJECT_SOURCE_DIR}/tests/browser/acceptance.test.mjs
                   ${attnviz_pages_dir} ${CMAKE_BINARY_DIR}/screenshots)
  set_tests_properties(browser_acceptance PROPERTIES FIXTURES_REQUIRED attnviz_pages
                                                     LABELS browser TIMEOUT 400 RUN_SERIAL TRUE)
else()
  message(WARNING "node not found: the browser tests are not registered (run tools/setup)")
endif()

# The numbers the matrix, model and neuron views print against `attnviz export`'s
# exact values for the same input (the bundled demo model on a sentence pair).
if(NODE_PROGRAM)
  add_test(NAME browser_exact_numbers
           COMMAND ${NODE_PROGRAM} ${PROJECT_SOURCE_DIR}/tests/browser/exact_numbers.test.mjs
                   $<TARGET_FILE:attnviz_cli> ${PROJECT_SOURCE_DIR}/models/demo
                   ${CMAKE_BINARY_DIR}/screenshots)
  set_tests_properties(browser_exact_numbers PROPERTIES LABELS browser TIMEOUT 300)
endif()

# The report page of `attnviz heads` (demo model, 200 held-out sentences): no console
# error, and every plotted value is stats.json's.
if(NODE_PROGRAM)
  add_test(NAME browser_heads_report
           COMMAND ${NODE_PROGRAM} ${PROJECT_SOURCE_DIR}/tests/browser/heads_report.test.mjs
                   $<TARGET_FILE:attnviz_cli> ${PROJECT_SOURCE_DIR}/models/demo
                   ${ATTNVIZ_TEST_DATA}/demo/heldout_sentences.txt ${CMAKE_BINARY_DIR}/screenshots)
  set_tests_properties(browser_heads_report PROPERTIES LABELS browser TIMEOUT 300)
endif()

# The analysis views (Rollout / flow, Head stats, Word level) against `attnviz export
# --rollout --flow --head-stats [--word-level]`: the demo model and a random-weights BERT.
if(NODE_PROGRAM)
  add_test(NAME browser_analysis_views
           COMMAND ${NODE_PROGRAM} ${PROJECT_SOURCE_DIR}/tests/browser/analysis_views.test.mjs
                   $<TARGET_FILE:attnviz_cli> ${PROJECT_SOURCE_DIR}/models/demo
                   ${PROJECT_SOURCE_DIR}/tests/browser/make_long_model.py
                   ${CMAKE_BINARY_DIR}/screenshots)
  set_tests_properties(browser_analysis_views PROPERTIES LABELS browser TIMEOUT 400)
endif()
