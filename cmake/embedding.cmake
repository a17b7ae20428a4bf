# What the scripts that compile files in share (cmake/embed_files.cmake,
# db/cmake/embed_migrations.cmake).
#
# qai_file_bytes(PATH BYTES SIZE): the file at PATH as the body of a C array initializer in
# BYTES ("0x2d,0x2d,...", 24 to a line, without the closing 0x00 the embedders add) and its
# length in SIZE.
function(qai_file_bytes path bytes_var size_var)
  file(READ ${path} hex HEX)
  string(LENGTH "${hex}" hex_length)
  math(EXPR size "${hex_length} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(REGEX REPLACE "((0x..,){24})" "\\1\n    " bytes "${bytes}")
  set(${bytes_var} "${bytes}" PARENT_SCOPE)
  set(${size_var} ${size} PARENT_SCOPE)
endfunction()

# qai_write_if_changed(PATH CONTENT): writes CONTENT to PATH unless it holds it already, so
# that touching nothing recompiles nothing.
function(qai_write_if_changed path content)
  if(EXISTS ${path})
    file(READ ${path} previous)
  endif()
  if(NOT "${previous}" STREQUAL "${content}")
    file(WRITE ${path} "${content}")
  endif()
endfunction()
