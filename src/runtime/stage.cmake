# The runtime's own loops use OpenMP: oneDNN (Debian's libdnnl) runs on the
# same libgomp pool, so attnviz's threads and oneDNN's never compete.
find_package(OpenMP REQUIRED)
target_link_libraries(attnviz_runtime PUBLIC OpenMP::OpenMP_CXX)
# `omp simd` is a hint: clang warns when it cannot vectorize (e.g. under the
# sanitizers of the fuzz build), which -Werror would make fatal.
target_compile_options(attnviz_runtime PRIVATE $<$<CXX_COMPILER_ID:Clang>:-Wno-pass-failed>)
