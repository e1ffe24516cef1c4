# Base-sized random models against the PyTorch reference (SlowBertBase.*,
# SlowArchBase.*): each test writes its model and reference into a temporary
# folder, runs it, and checks it against the float32 error model. Label "slow"
# (they are part of tools/test; `ctest -LE slow` leaves them out). The quick
# discovery in CMakeLists.txt excludes them.
gtest_discover_tests(test_model TEST_FILTER "Slow*" DISCOVERY_TIMEOUT 60
                     PROPERTIES LABELS "slow;model" TIMEOUT 900)

# --- the reference-fixture sweep (issue 13): tools/reference/sweep.py writes a
# grid of each architecture's attention-relevant config options at tiny size and
# runs ReferenceSweep.Cases on them (CMakeLists.txt's test discovery leaves that
# test out: it needs the cases). Quick half: one option varied at a time; slow
# half: the whole grid.
add_test(NAME model_reference_sweep_quick
  COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tools/reference/sweep.py --quick
          --build ${CMAKE_BINARY_DIR} --out ${CMAKE_BINARY_DIR}/reference-sweep-quick)
set_tests_properties(model_reference_sweep_quick PROPERTIES LABELS "model" TIMEOUT 300)
add_test(NAME model_reference_sweep
  COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tools/reference/sweep.py
          --build ${CMAKE_BINARY_DIR} --out ${CMAKE_BINARY_DIR}/reference-sweep)
set_tests_properties(model_reference_sweep PROPERTIES LABELS "slow;model" TIMEOUT 900)
