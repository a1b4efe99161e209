# Turns a web asset into a C++ source at build time, so that a service serves
# it from memory with no file read at run time. Run as
#   cmake -DINPUT=mobile.html -DOUTPUT=asset.cpp -DNAME=mobile_page -P embed_asset.cmake
# which defines pingan::svc::NAME (const char*) and NAME_size.
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hex_len)
math(EXPR size "${hex_len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," bytes "${hex}")
get_filename_component(from "${INPUT}" NAME)
file(WRITE "${OUTPUT}.tmp"
  "// Generated from ${from} by embed_asset.cmake: do not edit.\n"
  "#include <cstddef>\n"
  "namespace pingan::svc {\n"
  "static const char ${NAME}_bytes[] = {${bytes} 0};\n"
  "extern const char* const ${NAME} = ${NAME}_bytes;\n"
  "extern const std::size_t ${NAME}_size = ${size};\n"
  "}\n")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
