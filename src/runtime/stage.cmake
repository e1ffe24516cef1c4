# The runtime's own loops use OpenMP: oneDNN (Debian's libdnnl) runs on the
# same libgomp pool, so attnviz's threads and oneDNN's never compete.
find_package(OpenMP REQUIRED)
target_link_libraries(attnviz_runtime PUBLIC OpenMP::OpenMP_CXX)
