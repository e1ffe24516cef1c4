# Flow solves one max-flow problem per output token, in parallel (OpenMP).
find_package(OpenMP REQUIRED)
target_link_libraries(attnviz_analysis PUBLIC OpenMP::OpenMP_CXX)

# Head statistics: Unicode categories (punctuation) from utf8proc.
target_link_libraries(attnviz_analysis PUBLIC PkgConfig::UTF8PROC)
