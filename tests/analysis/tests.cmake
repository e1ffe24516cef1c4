# The model cases run the tiny architecture fixtures and the demo model through
# the forward (value norms need it), so test_analysis links the model stage too.
foreach(dep model runtime tokenizer)
  target_link_libraries(test_analysis PRIVATE attnviz_${dep})
endforeach()
