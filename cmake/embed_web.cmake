# Embeds a folder of the front end (web/, web/heads/, web/serve/) into a C++
# source at build time, rerun whenever a file there changes.
#
#   attnviz_embed_web(TARGET t DIR web/heads NAMESPACE attnviz::viz
#                     STRINGS heads_report_css=*.css heads_report_js=*.js)
#
# defines, in NAMESPACE, one std::string_view per NAME=PATTERN: the files of
# DIR matching PATTERN, in name order, as raw string literals ("" when none).
function(attnviz_embed_web)
  cmake_parse_arguments(ARG "" "TARGET;DIR;NAMESPACE" "STRINGS" ${ARGN})
  file(GLOB files LIST_DIRECTORIES false CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/${ARG_DIR}/*)
  string(MAKE_C_IDENTIFIER "${ARG_DIR}" stem)
  set(output ${CMAKE_BINARY_DIR}/generated/${stem}_assets.cpp)
  string(JOIN "," strings ${ARG_STRINGS})
  add_custom_command(
    OUTPUT ${output}
    COMMAND ${CMAKE_COMMAND} -DDIR=${PROJECT_SOURCE_DIR}/${ARG_DIR} -DLABEL=${ARG_DIR}
            -DNAMESPACE=${ARG_NAMESPACE} -DSTRINGS=${strings} -DOUTPUT=${output}
            -P ${PROJECT_SOURCE_DIR}/cmake/embed_web_files.cmake
    DEPENDS ${files} ${PROJECT_SOURCE_DIR}/cmake/embed_web_files.cmake
    COMMENT "Embedding ${ARG_DIR}/" VERBATIM)
  target_sources(${ARG_TARGET} PRIVATE ${output})
endfunction()
