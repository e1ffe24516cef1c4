#include <cstdio>

#include "attnviz/error.h"

namespace attnviz {

void warn(const std::string& message) {
    std::fprintf(stderr, "attnviz: warning: %s\n", message.c_str());
}

}  // namespace attnviz
