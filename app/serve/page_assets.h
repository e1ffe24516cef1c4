// The server's page from web/serve/, embedded at build time by
// cmake/embed_web.cmake (see app/serve/page.cmake).
#pragma once

#include <string_view>

namespace attnviz::serve {
extern const std::string_view page_html;  // web/serve/serve.html; empty when there is none
extern const std::string_view page_css;   // every web/serve/*.css, in name order
extern const std::string_view page_js;    // every web/serve/*.js, in name order
}  // namespace attnviz::serve
