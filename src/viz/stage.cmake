# The payload's deflate streams come from libdeflate (zlib format, faster than zlib).
pkg_check_modules(LIBDEFLATE REQUIRED IMPORTED_TARGET libdeflate)
target_link_libraries(attnviz_viz PUBLIC PkgConfig::LIBDEFLATE)

# The page's own JavaScript and CSS (web/), embedded at build time; the heat
# scale alone too, for the heads report.
attnviz_embed_web(TARGET attnviz_viz DIR web NAMESPACE attnviz::viz
                  STRINGS web_css=*.css web_js=*.js heat_scale_js=heat_scale.js)

# The version written into .npz exports (their provenance).
target_compile_definitions(attnviz_viz PRIVATE ATTNVIZ_VIZ_VERSION="${PROJECT_VERSION}")

# The report page of `attnviz heads` (web/heads/, with web/heat_scale.js), embedded the same way.
attnviz_embed_web(TARGET attnviz_viz DIR web/heads NAMESPACE attnviz::viz
                  STRINGS heads_report_css=*.css heads_report_js=*.js)
