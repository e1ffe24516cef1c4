# Base-sized random models against the PyTorch reference (SlowBertBase.*,
# SlowArchBase.*): each test writes its model and reference into a temporary
# folder, runs it, and checks it against the float32 error model. Label "slow"
# (they are part of tools/test; `ctest -LE slow` leaves them out). The quick
# discovery in CMakeLists.txt excludes them.
gtest_discover_tests(test_model TEST_FILTER "Slow*" DISCOVERY_TIMEOUT 60
                     PROPERTIES LABELS "slow;model" TIMEOUT 900)
