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

// The library's one warning path: "attnviz: warning: <message>" on stderr, for
// what it runs anyway but the user should know (a config.json key attnviz does
// not know, which might change the picture).
void warn(const std::string& message);

}  // namespace attnviz
