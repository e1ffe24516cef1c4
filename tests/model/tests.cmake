# bert-base-sized random BERT (12 x 768, 438 MB): the PyTorch reference writes
# the model and its outputs at 128 and 512 tokens into the build folder, then
# the DISABLED_BertBase* tests (skipped in the quick run) compare attnviz to it.
set(bert_base_dir ${CMAKE_BINARY_DIR}/bert-base-reference)
set(bert_base_reference ${PROJECT_SOURCE_DIR}/tools/reference/bert_reference.py --out ${bert_base_dir}
    --layers 12 --heads 12 --hidden 768 --intermediate 3072 --vocab 30522 --positions 512
    --init-std 0.05 --seed 7)
string(JOIN " " bert_base_reference ${bert_base_reference})
add_test(NAME model_bert_base_reference
  COMMAND sh -c "/usr/bin/python3 ${bert_base_reference} --seq 128 --reference-file reference-128.safetensors && \
/usr/bin/python3 ${bert_base_reference} --seq 512 --reference-only --reference-file reference-512.safetensors && \
ATTNVIZ_BERT_BASE_DIR=${bert_base_dir} $<TARGET_FILE:test_model> --gtest_also_run_disabled_tests --gtest_filter=*DISABLED_BertBase*")
set_tests_properties(model_bert_base_reference PROPERTIES LABELS "slow;model" TIMEOUT 900)

# --- architectures beyond BERT (issue 5; owner: the architectures helper) ---
# Base-sized random GPT-2 (1024 tokens), Llama-style GQA and BART checkpoints:
# tools/reference/arch_reference.py writes each one and its reference into a
# temporary folder from inside the DISABLED_ArchBase* tests.
add_test(NAME model_arch_base_reference
  COMMAND $<TARGET_FILE:test_model> --gtest_also_run_disabled_tests --gtest_filter=ArchBase.DISABLED_*)
set_tests_properties(model_arch_base_reference PROPERTIES LABELS "slow;model" TIMEOUT 900)

# --- the reference-fixture sweep (issue 13): tools/reference/sweep.py writes a
# grid of each architecture's attention-relevant config options at tiny size and
# runs ReferenceSweep.DISABLED_Cases on them. Quick half: one option varied at a
# time; slow half: the whole grid.
add_test(NAME model_reference_sweep_quick
  COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tools/reference/sweep.py --quick
          --build ${CMAKE_BINARY_DIR} --out ${CMAKE_BINARY_DIR}/reference-sweep-quick)
set_tests_properties(model_reference_sweep_quick PROPERTIES LABELS "model" TIMEOUT 300)
add_test(NAME model_reference_sweep
  COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tools/reference/sweep.py
          --build ${CMAKE_BINARY_DIR} --out ${CMAKE_BINARY_DIR}/reference-sweep)
set_tests_properties(model_reference_sweep PROPERTIES LABELS "slow;model" TIMEOUT 900)
