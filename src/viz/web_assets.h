// The page's JavaScript and CSS from web/, embedded at build time by
// cmake/embed_web.cmake (see src/viz/stage.cmake).
#pragma once

#include <string_view>

namespace attnviz::viz {
extern const std::string_view web_css;  // every web/*.css, in name order
extern const std::string_view web_js;   // every web/*.js, in name order; defines attnvizBoot(root)
}  // namespace attnviz::viz
