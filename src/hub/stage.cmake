# The hub verifies LFS downloads with OpenSSL's SHA-256.
find_package(OpenSSL REQUIRED)
target_link_libraries(attnviz_${ATTNVIZ_STAGE} PUBLIC OpenSSL::Crypto)
target_compile_definitions(attnviz_${ATTNVIZ_STAGE} PRIVATE ATTNVIZ_HUB_VERSION="${PROJECT_VERSION}")
