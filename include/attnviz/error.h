// attnviz::Error: the one exception type the library throws. Its message names
// the file, tensor, JSON key or byte offset at fault.
#pragma once

#include <stdexcept>
#include <string>

namespace attnviz {

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace attnviz
