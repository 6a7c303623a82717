# sluice_flatbuffers(TARGET <name> SCHEMAS a.fbs ...)
# Runs flatc on each schema and makes an INTERFACE target whose include directory holds, per
# schema `x.fbs`:
#   x_generated.h       tables, object API, reflection names, GetFullyQualifiedName()
#   x_bfbs_generated.h  the binary schema (.bfbs) embedded as bytes: <RootType>BinarySchema
#   x.bfbs              the same binary schema as a file
# The .bfbs bytes are what a SchemaRegistry stores in the log, so that tools can decode
# payloads with reflection and no generated code. Generated headers are SYSTEM includes:
# their style is flatc's, not ours.
function(sluice_flatbuffers)
  cmake_parse_arguments(A "" "TARGET" "SCHEMAS" ${ARGN})
  if(NOT TARGET flatbuffers::flatc)  # imported targets are scoped to a directory
    find_package(FlatBuffers 2.0.8 CONFIG REQUIRED)
  endif()
  set(out_dir ${CMAKE_CURRENT_BINARY_DIR}/${A_TARGET}_generated)
  set(outputs)
  foreach(schema ${A_SCHEMAS})
    get_filename_component(abs ${schema} ABSOLUTE)
    get_filename_component(stem ${schema} NAME_WE)
    set(gen ${out_dir}/${stem}_generated.h ${out_dir}/${stem}_bfbs_generated.h ${out_dir}/${stem}.bfbs)
    add_custom_command(OUTPUT ${gen}
      COMMAND flatbuffers::flatc --cpp --gen-object-api --reflect-names --gen-name-strings
              --bfbs-gen-embed -o ${out_dir} ${abs}
      COMMAND flatbuffers::flatc --schema -b -o ${out_dir} ${abs}
      DEPENDS ${abs} flatbuffers::flatc
      COMMENT "flatc ${stem}.fbs"
      VERBATIM)
    list(APPEND outputs ${gen})
  endforeach()
  add_custom_target(${A_TARGET}_flatc DEPENDS ${outputs})
  add_library(${A_TARGET} INTERFACE)
  add_dependencies(${A_TARGET} ${A_TARGET}_flatc)
  target_include_directories(${A_TARGET} SYSTEM INTERFACE ${out_dir})
  target_link_libraries(${A_TARGET} INTERFACE flatbuffers::flatbuffers_shared)
endfunction()
