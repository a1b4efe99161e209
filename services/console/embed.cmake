# Turns the page into a C++ source at build time: the console serves it from
# memory, with no file read at run time. Run as
#   cmake -DINPUT=index.html -DOUTPUT=page.cpp -P embed.cmake
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hex_len)
math(EXPR size "${hex_len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," bytes "${hex}")
file(WRITE "${OUTPUT}.tmp"
  "// Generated from services/console/web/index.html by embed.cmake: do not edit.\n"
  "#include <cstddef>\n"
  "namespace pingan::console {\n"
  "static const char page_bytes[] = {${bytes} 0};\n"
  "extern const char* const console_page = page_bytes;\n"
  "extern const std::size_t console_page_size = ${size};\n"
  "}\n")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
