#include <cstdio>

#include "attnviz/error.h"
#include "attnviz/files.h"

namespace attnviz {

void warn(const std::string& message) {
    std::fprintf(stderr, "attnviz: warning: %s\n", printable(message).c_str());
}

}  // namespace attnviz
