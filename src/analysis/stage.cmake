# Flow solves one max-flow problem per output token, in parallel (OpenMP).
find_package(OpenMP REQUIRED)
target_link_libraries(attnviz_analysis PUBLIC OpenMP::OpenMP_CXX)
